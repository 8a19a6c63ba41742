import AttestationClient
import AttestationService
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Real TDX and SEV-SNP evidence through the service (their certificates are valid today), and draft policies. The
/// fixture's permissive evidence policy allows chain-only verification (no collateral here): the SGX and TDX tokens
/// say their TCB status was not checked (`CollateralServiceTests` has the default refusal).
@Suite("Attestation service: TDX, SEV-SNP, draft policies")
struct RealEvidenceServiceTests {
    @Test func tdxAndSEVSNPEvidenceGetTheirClaims() async throws {
        try await ServiceFixture.with(evidencePolicy: ServiceFixture.permissiveEvidencePolicy) { fixture in
            try await fixture.application.test(.router) { client in
                let jwks = try await client.execute(uri: "/certs", method: .get).text
                let verifier = try await TokenVerifier(jwks: jwks, issuer: "http://attestation.test")

                let quote = try Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin")
                let tdx = try await client.execute(
                    uri: "/attest/TdxVm",
                    method: .post,
                    body: ByteBuffer(string: "{\"quote\":\"\(Base64URL.encode(quote))\"}")
                )
                #expect(tdx.status == .ok, "\(tdx.text)")
                let tdxClaims = try await verifier.verify(try #require(tdx.json["token"] as? String))
                #expect(tdxClaims["x-ms-attestation-type"] == .string("tdxvm"))
                #expect(tdxClaims["tdx_td_attributes_septve_disable"] == .bool(false))
                #expect(tdxClaims["tdx_mrtd"]?.stringValue?.count == 96)
                #expect(tdxClaims["x-enclavekit-tcb-status"] == .string("NotChecked"))

                let report = try Vectors.bytes("snp/trustee/test-report.bin")
                let vcek = try Vectors.bytes("snp/trustee/test-vcek.der")
                let document = "{\"report\":\"\(Base64URL.encode(report))\",\"vcek\":\"\(Base64URL.encode(vcek))\"}"
                let snp = try await client.execute(
                    uri: "/attest/SevSnpVm",
                    method: .post,
                    body: ByteBuffer(string: "{\"report\":\"\(Base64URL.encode(Array(document.utf8)))\"}")
                )
                #expect(snp.status == .ok, "\(snp.text)")
                let snpClaims = try await verifier.verify(try #require(snp.json["token"] as? String))
                #expect(snpClaims["x-ms-attestation-type"] == .string("sevsnpvm"))
                #expect(snpClaims["x-ms-sevsnpvm-microcode-svn"] == .integer(115))
                #expect(snpClaims["x-ms-sevsnpvm-product"] == .string("Milan-B0"))

                // MAA's own shape: SnpReport and the PEM chain in VcekCertChain.
                let pem = try Vectors.bytes("azure-vtpm/trustee-az-snp-vtpm/vcek.pem")
                let hcl = try Vectors.bytes("azure-vtpm/trustee-az-snp-vtpm/hcl-report.bin")
                let maa =
                    "{\"SnpReport\":\"\(Base64URL.encode(hcl[0x20..<0x4C0]))\",\"VcekCertChain\":\"\(Base64URL.encode(pem))\"}"
                let maaResponse = try await client.execute(
                    uri: "/attest/SevSnpVm?api-version=2022-08-01",
                    method: .post,
                    body: ByteBuffer(string: "{\"report\":\"\(Base64URL.encode(Array(maa.utf8)))\"}")
                )
                #expect(maaResponse.status == .ok, "\(maaResponse.text)")

                // An SGX quote is the wrong evidence for SevSnpVm; a TDX quote for SgxEnclave.
                let wrong = try await client.execute(
                    uri: "/attest/SgxEnclave",
                    method: .post,
                    body: ByteBuffer(string: "{\"quote\":\"\(Base64URL.encode(quote))\"}")
                )
                #expect(wrong.errorCode == "WrongEvidenceType")
                let garbled = try await client.execute(
                    uri: "/attest/SevSnpVm",
                    method: .post,
                    body: ByteBuffer(string: "{\"report\":\"\(Base64URL.encode(quote))\"}")
                )
                #expect(garbled.errorCode == "InvalidEvidence")

                // A policy can require SEPT_VE_DISABLE, as MAA's TDX policies do.
                let policy = """
                    version=1.0;
                    authorizationrules { c:[type=="tdx_td_attributes_septve_disable", value==true] => permit(); };
                    """
                _ = try await client.execute(
                    uri: "/policies/TdxVm",
                    method: .put,
                    headers: ServiceFixture.admin,
                    body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(policy))
                )
                let refused = try await client.execute(
                    uri: "/attest/TdxVm",
                    method: .post,
                    body: ByteBuffer(string: "{\"quote\":\"\(Base64URL.encode(quote))\"}")
                )
                #expect(refused.errorCode == "PolicyEvaluationError")
            }
        }
    }

    /// A real SGX quote on `SgxEnclave`, and the same quote in Open Enclave's report header on `OpenEnclave`.
    @Test func realSGXQuoteOnSgxEnclaveAndOpenEnclave() async throws {
        let quote = try Vectors.bytes("sgx/phala-dcap-qvl/sgx_quote")
        let header: [UInt8] =
            [1, 0, 0, 0, 2, 0, 0, 0] + withUnsafeBytes(of: UInt64(quote.count).littleEndian, Array.init)
        try await ServiceFixture.with(evidencePolicy: ServiceFixture.permissiveEvidencePolicy) { fixture in
            try await fixture.application.test(.router) { client in
                let jwks = try await client.execute(uri: "/certs", method: .get).text
                let verifier = try await TokenVerifier(jwks: jwks, issuer: "http://attestation.test")
                var measurements: [TokenValue] = []
                for (path, field, bytes) in [
                    ("/attest/SgxEnclave", "quote", quote), ("/attest/OpenEnclave", "report", header + quote),
                ] {
                    let response = try await client.execute(
                        uri: path,
                        method: .post,
                        body: ByteBuffer(string: "{\"\(field)\":\"\(Base64URL.encode(bytes))\"}")
                    )
                    #expect(response.status == .ok, "\(path): \(response.text)")
                    let claims = try await verifier.verify(try #require(response.json["token"] as? String))
                    #expect(claims["x-ms-attestation-type"] == .string("sgx"))
                    #expect(claims["x-enclavekit-simulated"] == .bool(false))
                    #expect(claims["x-enclavekit-tcb-status"] == .string("NotChecked"))
                    measurements.append(claims["x-ms-sgx-mrenclave"] ?? .null)
                }
                #expect(measurements.count == 2 && measurements[0] == measurements[1] && measurements[0] != .null)
            }
        }
    }

    /// `draftPolicyForAttestation` evaluates a policy without setting it and answers with an unsigned token, which
    /// no relying party accepts.
    @Test func draftPoliciesGiveUnsignedTokens() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("draft".utf8)
            let draft =
                "version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"draft\", value=true); };"
            let escaped = draft.replacingOccurrences(of: "\"", with: "\\\"")
            let body = ServiceFixture.body(
                evidence: try fixture.evidence(binding: runtime),
                runtimeData: runtime,
                extra: ",\"draftPolicyForAttestation\":\"\(escaped)\""
            )
            try await fixture.application.test(.router) { client in
                let response = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: body)
                )
                let token = try #require(response.json["token"] as? String, "\(response.text)")
                #expect(token.hasSuffix("."))
                let payload = try #require(Base64URL.decode(token.split(separator: ".")[1]))
                #expect(String(decoding: payload, as: UTF8.self).contains("\"draft\":true"))
                let jwks = try await client.execute(uri: "/certs", method: .get).text
                let verifier = try await TokenVerifier(jwks: jwks, issuer: "http://attestation.test")
                let unsigned = await #expect(throws: TokenVerifier.Failure.self) { try await verifier.verify(token) }
                #expect(unsigned?.reason.contains("is not allowed") == true, "\(String(describing: unsigned))")
                #expect(
                    try await client.execute(uri: "/policies/SimulatedEnclave", method: .get).json["isDefault"] as? Bool
                        == true
                )
            }
        }
    }
}
