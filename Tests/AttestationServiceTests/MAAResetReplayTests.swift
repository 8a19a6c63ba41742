import AttestationAPI
import AttestationService
import AttestationServicePostgres
import Crypto
import EnclaveCore
import Foundation
import SwiftASN1
import Testing
import X509
import _CryptoExtras

/// A reset in MAA's form, as Microsoft's clients make it, signs an empty payload under a header that only names the
/// signer: one signer's resets are the same signed bytes every time, whatever the type and whenever. The service
/// records it for the type it was first accepted for; presented again for that type it is a no-op while the type
/// still has the default policy (nothing to gain by replaying it), and refused once a policy was set since (it
/// cannot be told from a captured copy undoing that policy), with a message saying how to reset; presented for
/// another type it is refused.
@Suite("Attestation service: resets in MAA's form")
struct MAAResetReplayTests {
    /// A policy signer signing as Microsoft's `azure-security-attestation` client does: RSA, header
    /// `{"alg": "RSA256", "jwk": {"x5c": [...]}}` as Python's `json.dumps` writes it, PKCS #1 v1.5 signatures
    /// (deterministic: the same request gives the same JWS).
    struct MicrosoftSigner {
        let key: _RSA.Signing.PrivateKey
        let certificate: Certificate

        init() throws {
            key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            certificate = try .selfSigned(.init(key), .sha256WithRSAEncryption, commonName: "maa policy admin")
        }

        /// `AttestationToken(body, signing_key, signing_certificate).to_jwt_string()`: `body` nil for a reset.
        func jws(_ body: String?) throws -> String {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let x5c = Data(serializer.serializedBytes).base64EncodedString()
            let header = Base64URL.encode(Array("{\"alg\": \"RSA256\", \"jwk\": {\"x5c\": [\"\(x5c)\"]}}".utf8))
            let input = header + "." + Base64URL.encode(Array((body ?? "").utf8))
            let signature = try key.signature(for: SHA256.hash(data: Array(input.utf8)), padding: .insecurePKCS1v1_5)
            return input + "." + Base64URL.encode(Array(signature.rawRepresentation))
        }

        /// `set_policy(type, text)`: payload `{"AttestationPolicy": base64url(text)}`.
        func set(_ text: String) throws -> String {
            try jws("{\"AttestationPolicy\": \"\(Base64URL.encode(Array(text.utf8)))\"}")
        }

        /// `reset_policy(type)`: an empty payload.
        func reset() throws -> String { try jws(nil) }
    }

    static let policyA = "version=1.0; authorizationrules { => permit(); };"
    static let policyB = "version=1.0; authorizationrules { => deny(); };"

    /// The claims of a policy change's answer.
    static func claims(_ token: String) throws -> [String: Any] {
        let payload = try #require(Base64URL.decode(String(token.split(separator: ".")[1])))
        return try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
    }

    static func isDefault(_ fixture: ServiceFixture, _ type: AttestationType) async throws -> Bool {
        try await fixture.core.currentPolicy(type: type).isDefault
    }

    /// Microsoft's reset after Microsoft's set: accepted the first time, the policy back to the default, the answer
    /// as MAA's (`Removed`, the signer).
    @Test func microsoftsResetIsAcceptedTheFirstTime() async throws {
        let signer = try MicrosoftSigner()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            _ = try await fixture.core.setPolicy(type: .sgxEnclave, jws: try signer.set(Self.policyA))
            #expect(try await fixture.core.currentPolicy(type: .sgxEnclave).text == Self.policyA)
            let answer = try Self.claims(try await fixture.core.resetPolicy(type: .sgxEnclave, jws: try signer.reset()))
            #expect(answer["x-ms-policy-result"] as? String == "Removed")
            #expect(answer["x-ms-policy-signer"] != nil)
            #expect(try await Self.isDefault(fixture, .sgxEnclave))
        }
    }

    /// The same reset again while the type has the default policy: nothing changes, so it succeeds (a replay gains
    /// nothing); the signer need not make another kind of request for an idempotent operation.
    @Test func aSecondResetWhileTheDefaultIsInForceIsANoOp() async throws {
        let signer = try MicrosoftSigner()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            _ = try await fixture.core.setPolicy(type: .sgxEnclave, jws: try signer.set(Self.policyA))
            let first = try signer.reset()
            let second = try signer.reset()
            #expect(first == second, "Microsoft's reset is the same JWS every time")
            _ = try await fixture.core.resetPolicy(type: .sgxEnclave, jws: first)
            for _ in 0..<2 {
                let answer = try Self.claims(try await fixture.core.resetPolicy(type: .sgxEnclave, jws: second))
                #expect(answer["x-ms-policy-result"] as? String == "Removed")
                #expect(try await Self.isDefault(fixture, .sgxEnclave))
            }
        }
    }

    /// The dangerous replay: a policy was set after the reset; the same reset bytes would undo it. Refused by name,
    /// the message saying how to reset again; a versioned reset (what the message asks for) then works.
    @Test func aResetReplayedAfterASetIsRefused() async throws {
        let signer = try MicrosoftSigner()
        let versioned = try TrustHardeningTests.Signer()
        try await ServiceFixture.with(policySigners: [signer.certificate, versioned.certificate]) { fixture in
            // A reset first accepted while the type had a policy.
            _ = try await fixture.core.setPolicy(type: .sgxEnclave, jws: try signer.set(Self.policyA))
            _ = try await fixture.core.resetPolicy(type: .sgxEnclave, jws: try signer.reset())
            _ = try await fixture.core.setPolicy(type: .sgxEnclave, jws: try signer.set(Self.policyB))
            try await Self.expectReplayRefused(fixture, .sgxEnclave, try signer.reset(), policy: Self.policyB)
            // A reset first accepted as a no-op (the type had the default) binds too: another signer's reset, its
            // own bytes, first seen for TdxVm.
            let other = try MicrosoftSigner()
            _ = try await fixture.core.addPolicyCertificate(jws: try versioned.certificateChange(other, 1))
            _ = try await fixture.core.resetPolicy(type: .tdxVm, jws: try other.reset())
            _ = try await fixture.core.setPolicy(type: .tdxVm, jws: try other.set(Self.policyB))
            try await Self.expectReplayRefused(fixture, .tdxVm, try other.reset(), policy: Self.policyB)
            // What the message asks for: a reset naming this service, the type, the operation and a new version.
            _ = try await fixture.core.resetPolicy(
                type: .sgxEnclave,
                jws: try versioned.request("reset", type: "SgxEnclave", version: 5)
            )
            #expect(try await Self.isDefault(fixture, .sgxEnclave))
        }
    }

    static func expectReplayRefused(
        _ fixture: ServiceFixture,
        _ type: AttestationType,
        _ reset: String,
        policy: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let refused = await #expect(throws: ServiceError.self, sourceLocation: sourceLocation) {
            try await fixture.core.resetPolicy(type: type, jws: reset)
        }
        #expect(
            refused?.code == "PolicyRequestReplayed",
            "\(String(describing: refused))",
            sourceLocation: sourceLocation
        )
        #expect(refused?.statusCode == 403, sourceLocation: sourceLocation)
        let message = refused?.message ?? ""
        for expected in [
            "policy has been set since", AttestationServiceCore.policyVersionClaim, "enclave policy reset",
            type.rawValue,
        ] {
            #expect(message.contains(expected), "\(expected) not in: \(message)", sourceLocation: sourceLocation)
        }
        #expect(
            try await fixture.core.currentPolicy(type: type).text == policy,
            "the replay changed the policy",
            sourceLocation: sourceLocation
        )
    }

    /// A reset accepted for one type, presented for another: refused whether that type has a policy (the replay
    /// would remove it) or the default, and the policy there is unchanged.
    @Test func aResetAcceptedForOneTypeIsRefusedForAnother() async throws {
        let signer = try MicrosoftSigner()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            _ = try await fixture.core.resetPolicy(type: .sgxEnclave, jws: try signer.reset())
            _ = try await fixture.core.setPolicy(type: .openEnclave, jws: try signer.set(Self.policyA))
            for type in [AttestationType.openEnclave, .tdxVm] {
                let before = try await fixture.core.currentPolicy(type: type)
                let refused = await #expect(throws: ServiceError.self, "\(type)") {
                    try await fixture.core.resetPolicy(type: type, jws: try signer.reset())
                }
                #expect(refused?.code == "PolicyRequestReplayed", "\(String(describing: refused))")
                let message = refused?.message ?? ""
                #expect(message.contains("accepted for SgxEnclave"), "\(message)")
                #expect(message.contains(AttestationServiceCore.policyVersionClaim), "\(message)")
                #expect(try await fixture.core.currentPolicy(type: type).hash == before.hash)
            }
            // Its own type still takes it (a no-op: SgxEnclave has the default).
            _ = try await fixture.core.resetPolicy(type: .sgxEnclave, jws: try signer.reset())
        }
    }
}

extension TrustHardeningTests.Signer {
    /// A versioned request adding `other`'s certificate to the policy management certificates.
    func certificateChange(_ other: MAAResetReplayTests.MicrosoftSigner, _ version: Int) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(other.certificate)
        let x5c = Data(serializer.serializedBytes).base64EncodedString()
        return try jws(
            payload: "{\"x-enclavekit-policy-operation\":\"add\",\"x-enclavekit-policy-version\":\(version),"
                + "\"x-enclavekit-policy-audience\":\"http://attestation.test\","
                + "\"policyCertificate\":{\"kty\":\"RSA\",\"x5c\":[\"\(x5c)\"]}}"
        )
    }
}

/// The store primitive the replay records rest on, on PostgreSQL (the SQLite one runs in the suite above): a digest
/// reads as used only once recorded, and reading records nothing.
@Suite(
    "Attestation service: MAA-form reset records on PostgreSQL",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct MAAResetRecordPostgresTests {
    @Test func aRecordReadsAsUsedOnlyOnceMarked() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let store = try await PostgresServiceStore.connect(url: url)
        let digest = Hex.encode(Array(SHA256.hash(data: Array(UUID().uuidString.utf8))))
        #expect(try await store.policyRequestUsed(digest: digest) == false)
        #expect(try await store.policyRequestUsed(digest: digest) == false, "reading recorded it")
        #expect(try await store.markPolicyRequestUsed(digest: digest, at: Date()))
        #expect(try await store.policyRequestUsed(digest: digest))
        #expect(try await store.markPolicyRequestUsed(digest: digest, at: Date()) == false)
        try await store.close()
    }
}
