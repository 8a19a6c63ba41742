import Attestation
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import X509

@Suite("Attestation service: REST in process")
struct ServiceTests {
    @Test func attestIssuesATokenARelyingPartyVerifies() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array(#"{"keys":[{"kty":"EC","kid":"ephemeral"}],"purpose":"test"}"#.utf8)
            let evidence = try fixture.evidence(binding: runtime)
            try await fixture.application.test(.router) { client in
                let response = try await client.execute(
                    uri: "/attest/SimulatedEnclave?api-version=2022-08-01",
                    method: .post,
                    body: ByteBuffer(
                        string: ServiceFixture.body(
                            evidence: evidence,
                            runtimeData: runtime,
                            json: true,
                            extra: ",\"nonce\":\"n-1\""
                        )
                    )
                )
                #expect(response.status == .ok, "\(response.text)")
                let token = try #require(response.json["token"] as? String)
                let jwks = try await client.execute(uri: "/certs", method: .get).text
                let verifier = try await TokenVerifier(jwks: jwks, issuer: "http://attestation.test")
                let claims = try await verifier.verify(token, nonce: "n-1")
                #expect(claims["x-ms-attestation-type"] == .string("simulated-sgx"))
                #expect(claims["x-ms-sgx-mrenclave"] == .string(fixture.identity.uniqueID.hex))
                #expect(claims["x-ms-sgx-mrsigner"] == .string(fixture.identity.signerID.hex))
                #expect(claims["x-ms-sgx-product-id"] == .integer(9))
                #expect(claims["x-ms-sgx-svn"] == .integer(4))
                #expect(claims["x-ms-sgx-is-debuggable"] == .bool(false))
                #expect(claims["x-enclavekit-simulated"] == .bool(true))
                #expect(claims["x-enclavekit-tcb-status"] == .string("UpToDate"))
                #expect(claims["x-ms-ver"] == .string("1.0"))
                guard case .object(let runtimeClaims)? = claims["x-ms-runtime"],
                    case .array(let keys)? = runtimeClaims["keys"]
                else {
                    Issue.record("x-ms-runtime lacks keys")
                    return
                }
                #expect(keys.count == 1)
                for name in ["iss", "iat", "nbf", "exp", "jti", "x-ms-policy-hash"] {
                    #expect(claims[name] != nil, "\(name)")
                }

                // The relying party refuses: another nonce, another issuer, a changed token, a token past exp.
                func expectRefusal(_ reason: String, _ body: () async throws -> Void) async {
                    let failure = await #expect(throws: TokenVerifier.Failure.self) { try await body() }
                    #expect(failure?.reason.contains(reason) == true, "\(String(describing: failure))")
                }
                await expectRefusal("the nonce does not match") { _ = try await verifier.verify(token, nonce: "n-2") }
                let other = try await TokenVerifier(jwks: jwks, issuer: "http://elsewhere")
                await expectRefusal("the issuer is") { _ = try await other.verify(token) }
                var parts = token.split(separator: ".").map(String.init)
                parts[1] = String(parts[1].dropLast()) + (parts[1].hasSuffix("A") ? "B" : "A")
                await expectRefusal("the signature does not verify") {
                    _ = try await verifier.verify(parts.joined(separator: "."))
                }
                await expectRefusal("the token has expired") {
                    _ = try await verifier.verify(token, at: Date().addingTimeInterval(9 * 3600))
                }
                // alg none and HMAC are never accepted, whatever the key set says.
                let header = Base64URL.encode(Array(#"{"alg":"none","kid":"x"}"#.utf8))
                await expectRefusal("is not allowed") {
                    _ = try await verifier.verify(header + "." + token.split(separator: ".")[1] + ".")
                }
            }
        }
    }

    @Test func openIDConfigurationAndJWKS() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let configuration = try await client.execute(uri: "/.well-known/openid-configuration", method: .get)
                    .json
                #expect(configuration["issuer"] as? String == "http://attestation.test")
                #expect(configuration["jwks_uri"] as? String == "http://attestation.test/certs")
                let jwks = try await client.execute(uri: "/certs", method: .get).json
                let key = try #require((jwks["keys"] as? [[String: Any]])?.first)
                #expect(key["kty"] as? String == "EC" && key["alg"] as? String == "ES256")
                let x5c = try #require((key["x5c"] as? [String])?.first)
                let certificate = try Certificate(derEncoded: Array(try #require(Data(base64Encoded: x5c))))
                #expect(P256.Signing.PublicKey(certificate.publicKey) != nil)
            }
        }
    }

    /// Bad input gets a 4xx in MAA's shape, naming the problem, and changes nothing.
    @Test func badInputIsRefusedByName() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("bound".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            try await fixture.application.test(.router) { client in
                func post(_ path: String, _ body: String) async throws -> TestResponse {
                    try await client.execute(uri: path, method: .post, body: ByteBuffer(string: body))
                }
                let cases: [(String, String, HTTPResponse.Status, String)] = [
                    ("/attest/SimulatedEnclave", #"{"quote":"***"}"#, .badRequest, "InvalidBase64"),
                    ("/attest/SimulatedEnclave", "not json", .badRequest, "InvalidRequest"),
                    ("/attest/SimulatedEnclave", "{}", .badRequest, "InvalidRequest"),
                    (
                        "/attest/TdxVm", ServiceFixture.body(evidence: evidence, runtimeData: runtime), .badRequest,
                        "WrongEvidenceType"
                    ),
                    (
                        "/attest/SgxEnclave", ServiceFixture.body(evidence: evidence, runtimeData: runtime),
                        .badRequest, "InvalidEvidence"
                    ),
                    (
                        "/attest/SimulatedEnclave",
                        ServiceFixture.body(evidence: evidence, runtimeData: Array("other".utf8)),
                        .badRequest, "RuntimeDataNotBound"
                    ),
                    (
                        "/attest/SimulatedEnclave",
                        ServiceFixture.body(evidence: Array(evidence.dropLast(9)), runtimeData: runtime),
                        .badRequest, "InvalidEvidence"
                    ),
                    (
                        "/attest/NoSuchType", ServiceFixture.body(evidence: evidence, runtimeData: runtime),
                        .badRequest, "UnknownAttestationType"
                    ),
                    (
                        "/attest/SimulatedEnclave?api-version=2018-09-01-preview",
                        ServiceFixture.body(evidence: evidence, runtimeData: runtime), .badRequest,
                        "UnsupportedApiVersion"
                    ),
                    (
                        "/attest/SimulatedEnclave", String(repeating: " ", count: 300 << 10) + "{}", .contentTooLarge,
                        "RequestTooLarge"
                    ),
                ]
                for (path, body, status, code) in cases {
                    let response = try await post(path, body)
                    #expect(response.status == status, "\(path): \(response.text)")
                    #expect(response.errorCode == code, "\(path): \(response.text)")
                    #expect((response.json["error"] as? [String: Any])?["message"] as? String != nil)
                }
                // The control: the same evidence, bound, is accepted.
                let ok = try await post(
                    "/attest/SimulatedEnclave",
                    ServiceFixture.body(evidence: evidence, runtimeData: runtime)
                )
                #expect(ok.status == .ok, "\(ok.text)")
            }
            let audit = try await fixture.core.store.auditRecords(limit: 100)
            #expect(audit.first?.result == "permitted")
            #expect(audit.filter { $0.result == "refused" }.count >= 4)
        }
    }

    @Test func simulatedEvidenceNeedsAllowSimulated() async throws {
        try await ServiceFixture.with(allowSimulated: false) { fixture in
            let runtime = Array("x".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            try await fixture.application.test(.router) { client in
                let response = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: ServiceFixture.body(evidence: evidence, runtimeData: runtime))
                )
                #expect(response.status == .badRequest)
                #expect(response.errorCode == "SimulatedEvidenceNotAllowed")
            }
        }
    }

    /// A server challenge in the JSON runtime data is bound by the evidence and good once, until it expires.
    @Test func challengesAreSingleUseAndExpire() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let challenge = try await client.execute(uri: "/challenge", method: .get).json
                let nonce = try #require(challenge["nonce"] as? String)
                #expect((challenge["expiresAt"] as? Int).map { $0 > Int(Date().timeIntervalSince1970) } == true)
                let runtime = Array("{\"challenge\":\"\(nonce)\"}".utf8)
                let body = ServiceFixture.body(
                    evidence: try fixture.evidence(binding: runtime),
                    runtimeData: runtime,
                    json: true
                )
                let first = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: body)
                )
                #expect(first.status == .ok, "\(first.text)")
                let again = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: body)
                )
                #expect(again.errorCode == "InvalidChallenge")
                let unknown = Array(#"{"challenge":"never-issued"}"#.utf8)
                let forged = ServiceFixture.body(
                    evidence: try fixture.evidence(binding: unknown),
                    runtimeData: unknown,
                    json: true
                )
                let refused = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: forged)
                )
                #expect(refused.errorCode == "InvalidChallenge")
            }
            // Expiry, on the core with a clock.
            let issued = try await fixture.core.challenge(at: Date(timeIntervalSince1970: 1_000_000))
            let runtime = Array("{\"challenge\":\"\(issued.nonce)\"}".utf8)
            let request = AttestationServiceCore.AttestRequest(
                evidence: try fixture.evidence(binding: runtime),
                runtimeData: (runtime, true),
                initTimeData: nil,
                nonce: nil,
                draftPolicy: nil
            )
            let late = await #expect(throws: ServiceError.self) {
                try await fixture.core.attest(
                    type: .simulatedEnclave,
                    request: request,
                    at: issued.expires.addingTimeInterval(1)
                )
            }
            #expect(late?.code == "InvalidChallenge" || late?.code == "InvalidEvidence")
            #expect(try await fixture.core.store.consumeChallenge(issued.nonce, at: issued.expires) == false)  // gone
        }
    }

    @Test func policiesGetPutResetAndApply() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("p".utf8)
            let body = ServiceFixture.body(evidence: try fixture.evidence(binding: runtime), runtimeData: runtime)
            try await fixture.application.test(.router) { client in
                let initial = try await client.execute(uri: "/policies/SimulatedEnclave", method: .get).json
                #expect(initial["isDefault"] as? Bool == true)

                // A policy that refuses product 9, as an unsigned JWS: the attestation is then refused.
                let refusing = """
                    version=1.0;
                    authorizationrules { c:[type=="x-ms-sgx-product-id", value==9] => deny(); => permit(); };
                    issuancerules { c:[type=="x-ms-sgx-svn"] => issue(type="app-svn", value=c.value); };
                    """
                let put = try await client.execute(
                    uri: "/policies/SimulatedEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(refusing))
                )
                #expect(put.status == .ok, "\(put.text)")
                let refused = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: body)
                )
                #expect(refused.errorCode == "PolicyEvaluationError")
                let now = try await client.execute(uri: "/policies/SimulatedEnclave", method: .get).json
                #expect(now["policy"] as? String == refusing)

                // A syntax error names line and column and leaves the policy as it was.
                let broken = try await client.execute(
                    uri: "/policies/SimulatedEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(
                        string: AttestationServiceCore.unsignedPolicyJWS(
                            "version=1.0;\nauthorizationrules {\n  => permitt();\n};"
                        )
                    )
                )
                #expect(broken.errorCode == "InvalidPolicy")
                #expect(
                    (broken.json["error"] as? [String: Any])?["message"] as? String
                        == "policy line 3, column 6: unknown action 'permitt' (permit, deny, issue or add)"
                )
                #expect(
                    try await client.execute(uri: "/policies/SimulatedEnclave", method: .get).json["policy"] as? String
                        == refusing
                )
                let garbage = try await client.execute(
                    uri: "/policies/SimulatedEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: "not a jws")
                )
                #expect(garbage.errorCode == "InvalidPolicyDocument")

                // Issuance rules put claims into the token.
                let issuing =
                    "version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type==\"x-ms-sgx-svn\"] => issue(type=\"app-svn\", value=c.value); };"
                _ = try await client.execute(
                    uri: "/policies/SimulatedEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(issuing))
                )
                let issued = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: body)
                )
                let token = try #require(issued.json["token"] as? String)
                let jwks = try await client.execute(uri: "/certs", method: .get).text
                let claims = try await TokenVerifier(jwks: jwks, issuer: "http://attestation.test").verify(token)
                #expect(claims["app-svn"] == .integer(4))

                // Reset: back to the default, and the evidence passes.
                let reset = try await client.execute(
                    uri: "/policies/SimulatedEnclave:reset",
                    method: .post,
                    headers: ServiceFixture.admin
                )
                #expect(reset.status == .ok, "\(reset.text)")
                #expect(
                    try await client.execute(uri: "/policies/SimulatedEnclave", method: .get).json["isDefault"] as? Bool
                        == true
                )
            }
        }
    }

    @Test func withPolicySignersOnlySignedPoliciesAreAccepted() async throws {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate.selfSigned(.init(key), .ecdsaWithSHA256, commonName: "policy admin")
        try await ServiceFixture.with(policySigners: [certificate]) { fixture in
            let text = "version=1.0; authorizationrules { => permit(); };"
            try await fixture.application.test(.router) { client in
                let unsigned = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(text))
                )
                #expect(unsigned.status == .unauthorized)
                #expect(unsigned.errorCode == "PolicySignatureRequired")
                let signed = try AttestationServiceCore.signedPolicyJWS(
                    text,
                    audience: "http://attestation.test",
                    type: .sgxEnclave,
                    version: 1,
                    key: key,
                    certificate: certificate
                )
                let accepted = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: signed)
                )
                #expect(accepted.status == .ok, "\(accepted.text)")
                // Signed by someone else: refused.
                let stranger = P256.Signing.PrivateKey()
                let forged = try AttestationServiceCore.signedPolicyJWS(
                    text,
                    audience: "http://attestation.test",
                    type: .sgxEnclave,
                    version: 2,
                    key: stranger,
                    certificate: certificate
                )
                let refused = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: forged)
                )
                #expect(refused.errorCode == "PolicySignatureInvalid")
            }
        }
    }

    @Test func theSigningKeyPersistsAcrossRestarts() async throws {
        try await ServiceFixture.with { fixture in
            let store = try await SQLiteServiceStore.open(directory: fixture.directory + "/data")
            let again = try await AttestationServiceCore(configuration: fixture.core.configuration, store: store)
            #expect(again.signer.keyID == fixture.core.signer.keyID)
            try await store.close()
            let attributes = try FileManager.default.attributesOfItem(
                atPath: fixture.directory + "/data/attestation.sqlite"
            )
            #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o077 } == 0)
        }
    }
}
