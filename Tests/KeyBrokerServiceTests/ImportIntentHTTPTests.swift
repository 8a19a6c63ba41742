import AttestationAPI
import AttestationClient
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// A raw `POST /keys/{name}/import` (over real HTTP to `enclave serve keybroker` and its broker enclave) must carry the
/// owner's import intent in the wrapped payload: a payload without it, or with an intent for another name or another
/// release policy (a replay by the broker's host), is refused by name and nothing is stored.
@Suite("Key broker import intent over HTTP", .serialized)
struct ImportIntentHTTPTests {
    static func policy(authority: String, signer: String) -> KeyReleasePolicy {
        let text = """
            {"version":"1.0.0","anyOf":[{"authority":"\(authority)","allOf":[\
            {"claim":"x-ms-sgx-mrsigner","equals":"\(signer)"},\
            {"claim":"x-ms-sgx-svn","greaterOrEquals":2}]}]}
            """
        return KeyReleasePolicy(data: Base64URL.encode(Array(text.utf8)), immutable: true)
    }

    /// `POST /keys/{name}/import` with `wrapped` and `policy`; the refusal's status and code (nil: imported).
    static func post(
        _ harness: KeyImportClientTests.Harness,
        name: String,
        wrapped: [UInt8],
        policy: KeyReleasePolicy
    ) async throws -> (status: Int, code: String)? {
        do {
            _ = try await harness.client.importKey(
                name: name,
                KeyImportParameters(
                    key: KeyBrokerWebKey(kty: "oct-HSM", keyHSM: Base64URL.encode(wrapped)),
                    attributes: KeyAttributes(exportable: true),
                    releasePolicy: policy
                )
            )
            return nil
        } catch let failure as AttestationClient.Failure {
            return (failure.status, failure.code)
        }
    }

    @Test("A wrapped key without the import intent, or with another name's or policy's, is refused and not stored")
    func missingOrMismatchedIntentIsRefused() async throws {
        let harness = try await KeyImportClientTests.Harness()
        do {
            try await Self.attacks(harness)
        } catch {
            try? await harness.stop()
            throw error
        }
        try await harness.stop()
    }

    static func attacks(_ harness: KeyImportClientTests.Harness) async throws {
        let secret = (0..<32).map { UInt8(($0 * 29 + 3) & 0xFF) }
        let importKey = try await harness.client.importKey()
        let rsa = try _RSA.Encryption.PublicKey(
            n: try #require(importKey.n.flatMap { Base64URL.decode($0) }),
            e: try #require(importKey.e.flatMap { Base64URL.decode($0) })
        )
        let owner = KeyImportClientTests.owner.hex
        let policy = Self.policy(authority: harness.authority, signer: owner)
        let hostPolicy = Self.policy(authority: harness.authority, signer: String(repeating: "66", count: 32))
        let certificateFile = harness.directory + "/authority.pem"
        func intent(name: String, policy: KeyReleasePolicy) throws -> [UInt8] {
            try OwnerImportIntent.wrapped(
                secret,
                name: name,
                policy: policy,
                to: rsa,
                authority: harness.authority,
                certificateFile: certificateFile
            )
        }
        let attacks: [(what: String, name: String, wrapped: [UInt8], policy: KeyReleasePolicy, code: String)] = [
            ("bare key material", "bare", try RSAAESKeyWrap.wrap(secret, to: rsa), policy, "ImportIntentMissing"),
            (
                "another name's intent", "renamed", try intent(name: "owners-key", policy: policy), policy,
                "ImportIntentMismatch"
            ),
            (
                "the host's policy", "owners-key", try intent(name: "owners-key", policy: policy), hostPolicy,
                "ImportIntentMismatch"
            ),
        ]
        for attack in attacks {
            let refusal = try await Self.post(
                harness,
                name: attack.name,
                wrapped: attack.wrapped,
                policy: attack.policy
            )
            #expect(refusal?.status == 400, "\(attack.what): \(String(describing: refusal))")
            #expect(refusal?.code == attack.code, "\(attack.what): \(String(describing: refusal))")
        }
        // Nothing stored, every refusal audited with its code.
        let listed = try await harness.client.listKeys().value
        #expect(listed.isEmpty, "\(listed.map(\.kid))")
        for name in ["bare", "renamed", "owners-key"] {
            await #expect(throws: AttestationClient.Failure.self, "\(name)") {
                _ = try await harness.client.key(name: name)
            }
        }
        let imports = try await harness.imports()
        #expect(imports.count == attacks.count, "\(imports)")
        for (entry, attack) in zip(
            imports.sorted { ($0.key ?? "") < ($1.key ?? "") },
            attacks.sorted { $0.name < $1.name }
        ) {
            #expect(entry.result == "failed" && entry.reason.hasPrefix(attack.code), "\(entry)")
        }
        // The owner's own import (its intent, name and policy) is stored (control).
        let stored = try await Self.post(
            harness,
            name: "owners-key",
            wrapped: try intent(name: "owners-key", policy: policy),
            policy: policy
        )
        #expect(stored == nil, "\(String(describing: stored))")
        #expect(try await harness.client.key(name: "owners-key").key.kid?.contains("/keys/owners-key/") == true)
    }
}
