internal import AttestationAPI
internal import AttestationService
internal import Hummingbird

/// Clean rooms' rollback counters: `GET /counters/{contract}?nonce=…` (no credential: the value is not secret) and
/// `POST /counters/{contract}/increment` (`{"nonce", "expected", "state", "contract"}`, `contract` the contract's
/// canonical bytes in base64url, the clean room's attestation token as `Authorization: Bearer`).
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
            let increment = try await KeyBrokerServer.decode(
                RollbackCounterIncrement.self,
                request,
                what: "the increment"
            )
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

    static func token(_ request: Request) throws -> String {
        guard let token = KeyBrokerServer.bearerToken(request) else {
            throw ServiceError.unauthorized("Unauthorized", "the clean room's attestation token is required (Bearer)")
        }
        return token
    }
}
