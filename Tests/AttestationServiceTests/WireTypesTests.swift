import AttestationAPI
import AttestationService
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The wire types against literal MAA-shaped JSON (decode, re-encode, same members), the one error shape of a thrown
/// ``ServiceError``, and `/metrics` served when the CLI bootstraps the metrics system (and not by the library).
@Suite("Wire types: MAA-shaped JSON, one error shape, metrics from the CLI")
struct WireTypesTests {
    /// `bytes` as a JSON object, for comparing documents member by member.
    static func object(_ bytes: [UInt8]) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    /// Decoding `literal` as `T` and encoding it again gives the same JSON document.
    static func roundTrips<T: Codable>(_ type: T.Type, _ literal: String) throws -> T {
        let value = try WireJSON.decode(type, from: Array(literal.utf8))
        let again = try WireJSON.encode(value)
        #expect(try object(again) == object(Array(literal.utf8)), "\(String(decoding: again, as: UTF8.self))")
        return value
    }

    @Test func attestRequestInMAAShape() throws {
        let literal = """
            {"quote":"AQIDBA","runtimeData":{"data":"eyJhIjoxfQ","dataType":"JSON"},\
            "initTimeData":{"data":"AAEC","dataType":"Binary"},"draftPolicyForAttestation":"version= 1.0;",\
            "nonce":"n-1"}
            """
        let request = try Self.roundTrips(AttestRequest.self, literal)
        #expect(request.quote == "AQIDBA")
        #expect(request.report == nil)
        #expect(request.evidenceText == "AQIDBA")
        #expect(request.runtimeData == .init(data: "eyJhIjoxfQ", dataType: "JSON"))
        #expect(request.initTimeData?.dataType == "Binary")
        #expect(request.draftPolicyForAttestation == "version= 1.0;")
        #expect(request.nonce == "n-1")

        // SEV-SNP and Open Enclave post `report`, the quote routes `quote`: decided in one place.
        let snp = AttestRequest(
            route: "SevSnpVm",
            evidence: [1, 2, 3],
            runtimeData: .init(bytes: [9], dataType: .binary)
        )
        let snpJSON = try Self.object(try WireJSON.encode(snp))
        #expect(snpJSON["report"] as? String == Base64URL.encode([1, 2, 3]))
        #expect(snpJSON["quote"] == nil)
        #expect((snpJSON["runtimeData"] as? NSDictionary)?["dataType"] as? String == "Binary")
        #expect(snpJSON["nonce"] == nil, "absent members are left out, not null")
        for (route, field) in [
            ("SgxEnclave", "quote"), ("TdxVm", "quote"), ("SimulatedEnclave", "quote"), ("OpenEnclave", "report"),
            ("sevsnpvm", "report"),
        ] {
            #expect(AttestRequest.evidenceField(route: route) == field, "\(route)")
        }
        _ = try Self.roundTrips(AttestResponse.self, #"{"token":"a.b.c"}"#)
    }

    @Test func policyErrorMetadataAndChallengeDocuments() throws {
        let get = try Self.roundTrips(
            PolicyResponse.self,
            #"{"token":"a.b.c","policy":"version=1.0;","policyHash":"h","isDefault":true}"#
        )
        #expect(get.isDefault == true)
        let set = try Self.roundTrips(PolicyResponse.self, #"{"token":"a.b.c"}"#)
        #expect(set.policy == nil && set.policyHash == nil && set.isDefault == nil)
        let claims = try Self.roundTrips(
            PolicyResultClaims.self,
            """
            {"x-ms-policy":"eyJhbGciOiJub25lIn0.e30.","x-ms-policy-result":"Updated","x-ms-policy-token-hash":"t",\
            "x-ms-policy-signer":{"kty":"RSA","x5c":["MIIB"]},"x-ms-policy-hash":"h"}
            """
        )
        #expect(claims.policyResult == "Updated")
        #expect(claims.policySigner == .object(["kty": .string("RSA"), "x5c": .array([.string("MIIB")])]))
        #expect(PolicyResultClaims.tokenType == "policy+jwt")

        let error = try Self.roundTrips(
            ErrorResponse.self,
            #"{"error":{"code":"InvalidEvidence","message":"the quote \"q\" is short"}}"#
        )
        #expect(error.error.code == "InvalidEvidence")
        #expect(error.error.message == #"the quote "q" is short"#)

        let metadata = try Self.roundTrips(
            OpenIDMetadata.self,
            """
            {"issuer":"https://a.test","jwks_uri":"https://a.test/certs","id_token_signing_alg_values_supported":\
            ["RS256"],"response_types_supported":["token"],"claims_supported":["x-ms-attestation-type"]}
            """
        )
        #expect(metadata.jwksURI == "https://a.test/certs")
        let challenge = try Self.roundTrips(ChallengeResponse.self, #"{"nonce":"c-1","expiresAt":1700000000}"#)
        #expect(challenge.expiresAt == 1_700_000_000)
    }

    @Test func tokenValuesAreWrittenByJSONEncoder() throws {
        let value = TokenValue.object([
            "b": .array([.integer(1), .bool(true), .null, .double(0.5)]),
            "a": .string("quote \" backslash \\ newline \n tab \t bell \u{07} slash /"),
        ])
        // Sorted keys, escapes as JSONEncoder writes them, slashes left alone.
        #expect(
            value.jsonText
                == #"{"a":"quote \" backslash \\ newline \n tab \t bell \u0007 slash /","b":[1,true,null,0.5]}"#
        )
        #expect(try WireJSON.decode(TokenValue.self, from: Array(value.jsonText.utf8)) == value)
        #expect(TokenValue.string("bare").description == "bare")
        #expect(TokenValue.string("bare").jsonText == #""bare""#)
    }

    @Test func aThrownServiceErrorAnswersInMAAShape() async throws {
        // A handler just throws: the error writes its own response (HTTPResponseError).
        let router = Router()
        router.get("/refuse") { _, _ -> Response in
            throw ServiceError(status: .conflict, code: "PolicyConflict", message: #"a "quoted" reason"#)
        }
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(uri: "/refuse", method: .get)
            #expect(response.status == .conflict)
            #expect(response.headers[.contentType] == "application/json")
            let body = try WireJSON.decode(ErrorResponse.self, from: Array(buffer: response.body))
            #expect(body == ErrorResponse(code: "PolicyConflict", message: #"a "quoted" reason"#))
            #expect(try Self.object(Array(buffer: response.body)).allKeys as? [String] == ["error"])
        }
        // The service's routes: its own refusals, Hummingbird's (no route, body too large) and the API version.
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                for (uri, method, body, status, code) in [
                    (
                        "/attest/Nope", HTTPRequest.Method.post, "{}", HTTPResponse.Status.badRequest,
                        "UnknownAttestationType"
                    ),
                    ("/attest/SgxEnclave", .post, "[1]", .badRequest, "InvalidRequest"),
                    ("/attest/SgxEnclave", .post, #"{"quote":"@@"}"#, .badRequest, "InvalidBase64"),
                    ("/attest/SgxEnclave", .post, #"{"quote":"AAAA","nonce":7}"#, .badRequest, "InvalidRequest"),
                    ("/no/such/route", .get, "", .notFound, "NotFound"),
                    ("/certs?api-version=2018-01-01", .get, "", .badRequest, "UnsupportedApiVersion"),
                    (
                        "/attest/SgxEnclave", .post, String(repeating: " ", count: 300 << 10), .contentTooLarge,
                        "RequestTooLarge"
                    ),
                ] {
                    let response = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: body))
                    #expect(response.status == status, "\(uri): \(response.text)")
                    let decoded = try WireJSON.decode(ErrorResponse.self, from: Array(buffer: response.body))
                    #expect(decoded.error.code == code, "\(uri): \(response.text)")
                    #expect(!decoded.error.message.isEmpty)
                }
            }
        }
    }

    @Test func theServiceAnswersWithTheWireTypes() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let challenge = try WireJSON.decode(
                    ChallengeResponse.self,
                    from: Array(buffer: try await client.execute(uri: "/challenge", method: .get).body)
                )
                #expect(!challenge.nonce.isEmpty)
                #expect(Double(challenge.expiresAt) > Date().timeIntervalSince1970)
                let metadata = try WireJSON.decode(
                    OpenIDMetadata.self,
                    from: Array(
                        buffer: try await client.execute(uri: "/.well-known/openid-configuration", method: .get).body
                    )
                )
                #expect(metadata.issuer == fixture.core.issuer)
                #expect(metadata.jwksURI == fixture.core.issuer + "/certs")

                let runtime = Array("wire".utf8)
                let request = AttestRequest(
                    route: "SimulatedEnclave",
                    evidence: try fixture.evidence(binding: runtime),
                    runtimeData: .init(bytes: runtime, dataType: .binary),
                    nonce: "n-wire"
                )
                let response = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(bytes: try WireJSON.encode(request))
                )
                #expect(response.status == .ok, "\(response.text)")
                let token = try WireJSON.decode(AttestResponse.self, from: Array(buffer: response.body)).token
                #expect(token.split(separator: ".").count == 3)

                let policy = try WireJSON.decode(
                    PolicyResponse.self,
                    from: Array(buffer: try await client.execute(uri: "/policies/SgxEnclave", method: .get).body)
                )
                #expect(policy.isDefault == true)
                #expect(policy.policy?.isEmpty == false)
            }
        }
    }

    @Test func metricsAreServedOnlyWhenTheHostProvidesThem() async throws {
        // The library bootstraps nothing: without an exposition there is no /metrics.
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let response = try await client.execute(uri: "/metrics", method: .get)
                #expect(response.status == .notFound)
                #expect(response.errorCode == "NotFound")
            }
            let exposition = MetricsExposition(contentType: "text/plain; version=0.0.4") {
                Array("# handed over by the host\n".utf8)
            }
            let application = Application(router: AttestationServer.router(core: fixture.core, metrics: exposition))
            try await application.test(.router) { client in
                let response = try await client.execute(uri: "/metrics", method: .get)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/plain; version=0.0.4")
                #expect(response.text == "# handed over by the host\n")
            }
        }
    }

    @Test func theCLIBootstrapsPrometheusForMetrics() async throws {
        let directory = NSTemporaryDirectory() + "enclavekit-wire-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServedProcess(["--data-dir", directory, "--insecure-http"])
        // An attestation the service refuses (the evidence does not parse) is still counted.
        var refused = URLRequest(url: try #require(URL(string: server.base + "/attest/SgxEnclave")))
        refused.httpMethod = "POST"
        refused.httpBody = Data(try WireJSON.encode(AttestRequest(route: "SgxEnclave", evidence: [1, 2, 3, 4])))
        let (refusedBody, refusedResponse) = try await URLSession.shared.data(for: refused)
        #expect((refusedResponse as? HTTPURLResponse)?.statusCode == 400)
        #expect(try !WireJSON.decode(ErrorResponse.self, from: Array(refusedBody)).error.code.isEmpty)

        let (body, response) = try await URLSession.shared.data(
            from: try #require(URL(string: server.base + "/metrics"))
        )
        let text = String(decoding: body, as: UTF8.self)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(text.contains("enclavekit_attestations_total"), "\(text)")
        #expect(text.contains(#"result="refused""#), "\(text)")
        #expect(text.contains(#"type="SgxEnclave""#), "\(text)")
    }
}
