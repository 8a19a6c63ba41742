import AttestationAPI
import EnclaveCore
import Testing

@testable import AttestationClient

/// An owner's import always asks for an immutable release policy, in the request and in the intent the broker
/// enclave checks: a current broker stores it immutable anyway, but an older build of the same signer and product
/// (which the owner's identity check accepts) honours the request's flag, and its host could then replace the policy
/// (review 8, finding 1).
@Suite("AttestationClient: an owner's release policy goes immutable")
struct OwnerPolicyIntentTests {
    static let policy = KeyReleasePolicy(data: Base64URL.encode(Array(#"{"version":"1.0.0","anyOf":[]}"#.utf8)))

    static func broker() -> KeyBrokerClient.VerifiedBroker {
        KeyBrokerClient.VerifiedBroker(
            importKey: KeyBrokerWebKey(kid: "import", kty: "RSA"),
            signingCertificate: [],
            signingKey: [],
            claims: AttestationTokenClaims([:]),
            authorities: []
        )
    }

    /// Failed before: a policy sent without `immutable` (or with `false`) went out mutable, and the intent bound
    /// `immutable: false`.
    @Test(arguments: [nil, false, true] as [Bool?])
    func theIntentAndTheRequestBindImmutable(asked: Bool?) throws {
        var policy = Self.policy
        policy.immutable = asked
        let sent = try #require(KeyBrokerClient.ownerReleasePolicy(policy))
        #expect(sent.immutable == true)
        #expect(sent.data == policy.data)
        #expect(sent.contentType == policy.contentType)
        let intent = try KeyBrokerClient.importIntent(
            name: "owner-key",
            material: try KeyImportMaterial.aes([UInt8](repeating: 7, count: 32)),
            releasePolicy: policy,
            broker: Self.broker()
        )
        #expect(intent.immutable)
        #expect(intent.exportable)
    }

    /// A key imported without a policy is never released: nothing to make immutable.
    @Test func noPolicyStaysNoPolicy() throws {
        #expect(KeyBrokerClient.ownerReleasePolicy(nil) == nil)
        let intent = try KeyBrokerClient.importIntent(
            name: "admin-unwrap-key",
            material: try KeyImportMaterial.aes([UInt8](repeating: 7, count: 32)),
            releasePolicy: nil,
            broker: Self.broker()
        )
        #expect(!intent.immutable)
        #expect(!intent.exportable)
    }
}
