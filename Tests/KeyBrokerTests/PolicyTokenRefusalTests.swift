import AttestationAPI
import AttestationService
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import TestSupport
import Testing
import _CryptoExtras

/// The attestation service signs its policy tokens (`GET /policies/{type}`, the answers to policy and certificate
/// changes) with the same key as its attestation tokens. The broker must not take one for the other: a policy token
/// is refused by name (`NotAnAttestationToken`), as the client's `TokenVerifier` refuses it, while attestation tokens
/// in MAA's shape (`typ` `JWT` or absent, `x-ms-attestation-type`, no policy claims) still release.
@Suite("KeyBroker: a policy token is not an attestation token")
struct PolicyTokenRefusalTests {
    typealias Code = BrokerRefusal.Code
    static let authority = TestAuthority.shared

    /// The service's own policy tokens, signed with the key the broker pins for it: the signature, issuer and times
    /// verify, and the token is still refused.
    @Test func theServicesPolicyTokensAreRefused() async throws {
        let issuer = "https://attest.policy.test"
        let directory = try Fixtures.temporaryDirectory("policy-token")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = AttestationServiceCore.Configuration(issuer: issuer)
        configuration.adminCredential = AdminCredential(token: "policy-token-admin-0123456789")
        let store = try await SQLiteServiceStore.open(directory: directory + "/data")
        let service = try await AttestationServiceCore(configuration: configuration, store: store)
        let pinned = try TrustedAuthority(BrokerEnclaveFixture.authority(service, url: issuer))
        let verifier = ReleaseTokenVerifier(authorities: [pinned])
        let tokens = [
            ("policy of a type", try await service.policyToken(type: .sgxEnclave)),
            (
                "a policy change's answer",
                try await service.resetPolicy(type: .sgxEnclave, credential: "policy-token-admin-0123456789")
            ),
            ("the policy certificates", try await service.policyCertificatesToken()),
        ]
        try? await store.close()
        for (what, token) in tokens {
            let header = try #require(Base64URL.decode(String(token.split(separator: ".")[0])))
            #expect(String(decoding: header, as: UTF8.self).contains("policy+jwt"), "\(what)")
            let refused = #expect(throws: KeyBrokerError.self, "\(what)") {
                _ = try verifier.verify(token, now: Date())
            }
            #expect(refused?.code == Code.notAttestationToken, "\(what): \(String(describing: refused))")
        }
    }

    /// A token with a release's every attestation claim and a policy token's marks, each alone: the release is
    /// refused by name and releases nothing.
    @Test(
        arguments: [
            ("typ policy+jwt", ["typ": TokenValue.string("policy+jwt")], [String: TokenValue](), [String]()),
            ("typ not a string", ["typ": .integer(1)], [:], []),
            ("x-enclavekit-token-kind", [:], ["x-enclavekit-token-kind": .string("policy")], []),
            ("x-ms-policy", [:], ["x-ms-policy": .string("eyJhbGciOiJub25lIn0..")], []),
            ("x-ms-policy-result", [:], ["x-ms-policy-result": .string("Updated")], []),
            ("no x-ms-attestation-type", [:], [:], ["x-ms-attestation-type"]),
        ]
    )
    func policyTokenMarksAreRefused(
        what: String,
        header: [String: TokenValue],
        added: [String: TokenValue],
        removed: [String]
    ) throws {
        var claims = KeyReleaseAttackTests.claims().merging(added) { $1 }
        for name in removed { claims[name] = nil }
        try KeyReleaseAttackTests.expectRefused(
            try Self.authority.token(claims, header: header),
            Code.notAttestationToken,
            mentioning: "not an attestation token"
        )
    }

    /// MAA's attestation tokens: header `alg`, `jku`, `kid`, `typ: JWT` (any case) or no `typ`, and
    /// `x-ms-attestation-type`; no `x-enclavekit-token-kind`. Each still releases.
    @Test(arguments: ["JWT", "jwt", nil] as [String?])
    func attestationTokensInMAAsShapeStillRelease(type: String?) throws {
        var header: [String: TokenValue] = [
            "alg": .string("RS256"), "kid": .string(Self.authority.kid),
            "jku": .string(Self.authority.url + "/certs"),
        ]
        if let type { header["typ"] = .string(type) }
        let input = TestAuthority.encode(header) + "." + TestAuthority.encode(KeyReleaseAttackTests.claims())
        let signature = try Self.authority.key.signature(
            for: SHA256.hash(data: Array(input.utf8)),
            padding: .insecurePKCS1v1_5
        )
        let token = input + "." + Base64URL.encode(Array(signature.rawRepresentation))
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: token),
            now: Date()
        )
        #expect(response.value != nil && response.refusal == nil, "\(String(describing: response.refusal))")
    }
}
