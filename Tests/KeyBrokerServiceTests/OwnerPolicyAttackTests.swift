import AttestationAPI
import AttestationClient
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import Testing
import X509

/// The broker's administrator (who holds the administrator token, as an owner does) replaces the mutable release
/// policy of an owner's imported key with one naming an enclave of its own, then has the key released to that enclave.
/// Over real HTTP to `enclave serve keybroker` and its broker enclave.
@Suite("Attack review: an owner's release policy replaced by the administrator", .serialized)
struct OwnerPolicyAttackTests {
    /// A policy releasing to enclaves of `signer` under `authority`.
    static func policy(authority: String, signer: Digest32) -> KeyReleasePolicy {
        let text = """
            {"version":"1.0.0","anyOf":[{"authority":"\(authority)","allOf":[\
            {"claim":"x-ms-sgx-mrsigner","equals":"\(signer.hex)"}]}]}
            """
        return KeyReleasePolicy(data: Base64URL.encode(Array(text.utf8)), immutable: false)
    }

    static let attacker = try! Digest32(bytes: [UInt8](repeating: 0x66, count: 32))

    /// The failure code `body` throws (nil: it succeeded).
    static func refusal(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let failure as AttestationClient.Failure {
            return "\(failure.status) \(failure.code)"
        } catch {
            return "\(error)"
        }
    }

    @Test("A mutable policy on an owner's key is refused to the administrator; the key goes to no other enclave")
    func administratorReplacesAnOwnersPolicy() async throws {
        let harness = try await KeyImportClientTests.Harness()
        do {
            try await Self.attack(harness)
        } catch {
            try? await harness.stop()
            throw error
        }
        try await harness.stop()
    }

    static func attack(_ harness: KeyImportClientTests.Harness) async throws {
        let client = harness.client
        let secret = (0..<32).map { UInt8(($0 * 7 + 1) & 0xFF) }
        let owners = try await client.importKey(
            name: "owners-key",
            material: try .aes(secret),
            releasePolicy: Self.policy(authority: harness.authority, signer: KeyImportClientTests.owner),
            attestation: harness.attestation,
            expecting: harness.expectation
        )
        let version = String(try #require(owners.key.kid?.split(separator: "/").last))
        // Asked mutable; the broker enclave stores an owner's import immutable (OwnerPolicyImmutableAttackTests).
        #expect(owners.attributes.origin == .owner && owners.releasePolicy?.immutable == true)
        let takeover = Self.policy(authority: harness.authority, signer: Self.attacker)
        let replaced = await Self.refusal {
            _ = try await client.updateReleasePolicy(name: "owners-key", version: version, takeover)
        }
        #expect(replaced == "409 KeyOwnedByImporter", "\(String(describing: replaced))")
        #expect(try await client.key(name: "owners-key", version: version).releasePolicy == owners.releasePolicy)
        // The attacker's enclave gets nothing; the owner's enclave still gets the key.
        let target = P256.KeyAgreement.PrivateKey()
        let stolen = await Self.refusal {
            _ = try await client.release(
                name: "owners-key",
                version: version,
                KeyReleaseParameters(target: try await harness.token(signer: Self.attacker, key: target.publicKey))
            )
        }
        #expect(stolen == "403 PolicyNotSatisfied", "\(String(describing: stolen))")
        let jws = try await client.release(
            name: "owners-key",
            version: version,
            KeyReleaseParameters(
                target: try await harness.token(signer: KeyImportClientTests.owner, key: target.publicKey)
            )
        )
        let certificate = try Certificate(
            derEncoded: Array(try #require(Data(base64Encoded: try await client.attestation().certificate)))
        )
        let brokerKey = try #require(P256.Signing.PublicKey(certificate.publicKey))
        #expect(try ReleaseAnswer(jws: jws, brokerKey: brokerKey).unwrap(with: target) == secret)
        // Control: the same steps on the administrator's own key succeed (the attack path is real).
        let operators = try await client.createKey(
            name: "operators-key",
            KeyCreateParameters(
                kty: "oct",
                keySize: 256,
                attributes: KeyAttributes(exportable: true),
                releasePolicy: Self.policy(authority: harness.authority, signer: KeyImportClientTests.owner)
            )
        )
        let operatorsVersion = String(try #require(operators.key.kid?.split(separator: "/").last))
        _ = try await client.updateReleasePolicy(name: "operators-key", version: operatorsVersion, takeover)
        _ = try await client.release(
            name: "operators-key",
            version: operatorsVersion,
            KeyReleaseParameters(target: try await harness.token(signer: Self.attacker, key: target.publicKey))
        )
        let audited = try await client.audit(top: 100).value.filter { $0.operation == "updatePolicy" }
        #expect(audited.map(\.result).sorted() == ["failed", "succeeded"], "\(audited)")
        #expect(audited.contains { $0.key == "owners-key" && $0.reason.hasPrefix("KeyOwnedByImporter") })
    }
}
