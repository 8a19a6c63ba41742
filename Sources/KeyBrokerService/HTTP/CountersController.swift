internal import AttestationAPI
internal import AttestationService
internal import Hummingbird

/// Clean rooms' rollback counters: `GET /counters/{contract}?nonce=…` (no credential: the value is not secret) and
/// `POST /counters/{contract}/increment` (`{"nonce", "expected", "state", "contract", "signature"}`, `contract` the
/// contract's canonical bytes in base64url, `signature` the clean room enclave's over the increment with the
/// `counterRequestKey` its token binds, the clean room's attestation token as `Authorization: Bearer`).
/// Answers `{"contract", "value", "state", "nonce", "signature"}` signed by the broker enclave.
struct CountersController: Sendable {
    let core: KeyBrokerCore
    let store: any CounterStore

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        let core = self.core
        let store = self.store
        router.get("/counters/:contract") { request, context -> Response in
            KeyBrokerServer.json(
                try await core.counter(
                    contract: context.parameters.get("contract") ?? "",
                    token: KeyBrokerServer.bearerToken(request) ?? "",
                    nonce: request.uri.queryParameters.get("nonce") ?? "",
                    increment: nil,
                    store: store
                )
            )
        }
        router.post("/counters/:contract/increment") { request, context -> Response in
            let token = try Self.token(request)
            let body: [UInt8]
            do {
                body = Array(buffer: try await request.body.collect(upTo: Self.maxIncrementBodySize))
            } catch {
                throw ServiceError.tooLarge("the increment is larger than \(Self.maxIncrementBodySize) bytes")
            }
            let increment = try KeyBrokerServer.decode(RollbackCounterIncrement.self, body, what: "the increment")
            return KeyBrokerServer.json(
                try await core.counter(
                    contract: context.parameters.get("contract") ?? "",
                    token: token,
                    nonce: increment.nonce,
                    increment: increment,
                    store: store
                )
            )
        }
    }

    /// The largest increment body: it carries the contract's canonical bytes (at most 1 MiB) in base64url, more than
    /// `KeyBrokerServer.maxBodySize` allows other requests.
    static let maxIncrementBodySize = 2 << 20

    static func token(_ request: Request) throws -> String {
        guard let token = KeyBrokerServer.bearerToken(request) else {
            throw ServiceError.unauthorized("Unauthorized", "the clean room's attestation token is required (Bearer)")
        }
        return token
    }
}
