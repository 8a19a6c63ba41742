import AttestationAPI
import AttestationClient
import AttestationService
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import Synchronization
import X509

extension EnclaveCommand.CleanRoomCLI {
    /// The clean room host once it exists: increments of the rollback counter carry a fresh token for its enclave
    /// (the link is registered before the enclave loads, the host is made after).
    final class CounterTokenSource: Sendable {
        private let room = Mutex<CleanRoomHost?>(nil)

        func set(_ host: CleanRoomHost) { room.withLock { $0 = host } }

        func token() async throws -> String {
            guard let host = room.withLock({ $0 }) else {
                throw EnclaveError.callFailed("the clean room host is not ready for a counter increment")
            }
            return try await host.counterToken()
        }
    }

    /// The host's link to the key broker's rollback counter for the clean room enclave: the broker's signing key
    /// (the P-256 key of the signing certificate in `GET /attestation`), `GET /counters/{contract}?nonce=` and
    /// `POST /counters/{contract}/increment` with a fresh attestation token of the clean room. The host checks
    /// nothing: the enclave verifies every answer with that key and its nonce, and the data owners' release policy
    /// requires the key to be the broker's own (`x-ms-runtime.counterKey`). An increment carries the stored contract's
    /// bytes (`contract`), from which the broker enclave reads the enclave allowed to move the counter, and the
    /// enclave's signature over it (`signature`, with the `counterRequestKey` its token binds).
    static func counterLink(
        broker: KeyBrokerClient,
        tokens: CounterTokenSource,
        contract document: @escaping @Sendable () async throws -> [UInt8]?
    ) -> CleanRoomCounterLink {
        CleanRoomCounterLink(
            brokerKey: {
                let offered = try await calling("key") { try await broker.attestation() }
                guard let der = Data(base64Encoded: offered.certificate),
                    let certificate = try? Certificate(derEncoded: Array(der)),
                    let key = P256.Signing.PublicKey(certificate.publicKey)
                else {
                    throw EnclaveError.callFailed("the key broker's signing certificate is not a P-256 certificate")
                }
                return Array(key.rawRepresentation)
            },
            read: { contract, nonce in
                answer(try await calling("read") { try await broker.counter(contract: contract, nonce: nonce) })
            },
            increment: { contract, nonce, expected, state, signature in
                let token: String
                do {
                    token = try await tokens.token()
                } catch let error as ServiceError {
                    throw EnclaveError.callFailed(
                        "no attestation token for the increment: \(error.code): \(error.message)"
                    )
                }
                return answer(
                    try await calling("increment") {
                        try await broker.incrementCounter(
                            contract: contract,
                            nonce: nonce,
                            expected: expected,
                            state: state,
                            token: token,
                            document: try await document(),
                            signature: signature
                        )
                    }
                )
            }
        )
    }

    /// A broker call whose refusal reaches the enclave as a named `callFailed` (code and message, bounded).
    private static func calling<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as AttestationClient.Failure where failure.status == 404 {
            throw EnclaveError.callFailed(
                "the key broker serves no rollback counters (a replica on a shared --database, or an older broker): "
                    + "the clean room does not open without one"
            )
        } catch let failure as AttestationClient.Failure {
            throw EnclaveError.callFailed(
                "the key broker's counter (\(what)): \(failure.code): \(String(failure.message.prefix(300)))"
            )
        }
    }

    private static func answer(_ wire: RollbackCounterAnswer) -> CleanRoomCounterAnswer {
        CleanRoomCounterAnswer(
            value: wire.value,
            state: wire.state,
            nonce: wire.nonce,
            signature: Base64URL.decode(wire.signature) ?? []
        )
    }
}
