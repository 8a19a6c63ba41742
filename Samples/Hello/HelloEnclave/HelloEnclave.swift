import Crypto
import EnclaveRuntime
import Foundation
import HelloInterface
import Synchronization

/// The hello enclave: one ECALL that makes one OCALL, evidence for a nonce, and an attested ephemeral key.
@main
struct HelloEnclave: EnclaveApplication {
    let context: EnclaveContext
    /// Keys made for attestation; they stay here.
    let keys = KeyRing()

    init(context: EnclaveContext) {
        self.context = context
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(Greet.self) { name in
            let trimmed = String(name.prefix(256))
            _ = try await context.ocall(Log.self, "greeting \(trimmed.count) characters")
            let id = String(context.identity.uniqueID.hex.prefix(8))
            return "Hello, \(trimmed)! (from enclave \(id))"
        }
        calls.register(Attest.self) { nonce in
            guard nonce.count <= 1024 else { throw EnclaveError.malformedInput("nonce longer than 1 KiB") }
            return try await context.evidence(reportData: EnclaveContext.reportData(hashing: nonce))
        }
        let keys = self.keys
        calls.register(AttestKey.self) { challenge in
            guard challenge.utf8.count <= 256,
                challenge.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C })
            else { throw EnclaveError.malformedInput("the challenge is not a short token") }
            let key = P256.Signing.PrivateKey()
            keys.append(key)
            let raw = key.publicKey.rawRepresentation
            let runtime = RuntimeData(
                challenge: challenge,
                keys: [
                    .init(
                        kty: "EC",
                        crv: "P-256",
                        kid: "hello-enclave",
                        x: Base64URL.encode(raw.prefix(32)),
                        y: Base64URL.encode(raw.suffix(32))
                    )
                ]
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = Array(try encoder.encode(runtime))
            let evidence = try await context.evidence(reportData: EnclaveContext.reportData(hashing: data))
            return KeyAttestation(runtimeData: data, evidence: evidence)
        }
    }
}

/// The runtime data the enclave binds into its evidence: the service's challenge and its ephemeral public key as a
/// JWK (`x-ms-runtime` in the token).
struct RuntimeData: Encodable {
    /// A public key as a JSON Web Key.
    struct Key: Encodable {
        let kty: String
        let crv: String
        let kid: String
        let x: String
        let y: String
    }

    let challenge: String
    let keys: [Key]
}

/// The enclave's attested keys.
final class KeyRing: Sendable {
    private let keys = Mutex<[P256.Signing.PrivateKey]>([])

    func append(_ key: P256.Signing.PrivateKey) { keys.withLock { $0.append(key) } }
}
