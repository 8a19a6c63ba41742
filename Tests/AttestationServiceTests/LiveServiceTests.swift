import AttestationClient
import AttestationService
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The service over a real socket and HTTPS (its self-signed certificate, verified by the clients), driven by
/// clients outside Swift: curl --cacert, and Python with PyJWT verifying the token against `/certs`.
@Suite("Attestation service: over HTTPS, with curl and PyJWT")
struct LiveServiceTests {
    /// A Python with PyJWT (Debian's python3-jwt, or pip's PyJWT).
    static let python: String? = ["/usr/bin/python3.11", "/usr/bin/python3", "/usr/local/bin/python3"].first {
        FileManager.default.isExecutableFile(atPath: $0)
            && ((try? ChildProcess.run($0, ["-c", "import jwt"]))?.status == 0)
    }

    static let pythonClient = #"""
        import base64, json, ssl, sys, urllib.request, urllib.error
        import jwt
        base, body_path, ca_path = sys.argv[1], sys.argv[2], sys.argv[3]
        try:
            urllib.request.urlopen(base + "/certs", context=ssl.create_default_context())
            print("UNVERIFIED SERVER ACCEPTED")
        except urllib.error.URLError as error:
            print("untrusted certificate refused:", type(error.reason).__name__)
        context = ssl.create_default_context(cafile=ca_path)
        def urlopen(target):
            return urllib.request.urlopen(target, context=context)
        request = urllib.request.Request(base + "/attest/SimulatedEnclave?api-version=2022-08-01",
                                         data=open(body_path, "rb").read(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        token = json.load(urlopen(request))["token"]
        issuer = json.load(urlopen(base + "/.well-known/openid-configuration"))["issuer"]
        jwks = json.load(urlopen(base + "/certs"))
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
        claims = jwt.decode(token, key.key, algorithms=["ES256"], issuer=issuer, options={"require": ["exp", "iat", "nbf"]})
        try:
            jwt.decode(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), key.key, algorithms=["ES256"])
            print("TAMPERED TOKEN ACCEPTED")
        except jwt.InvalidSignatureError:
            pass
        bad = urllib.request.Request(base + "/attest/SimulatedEnclave", data=b'{"quote":"@@@"}', method="POST")
        try:
            urlopen(bad)
            print("BAD REQUEST ACCEPTED")
        except urllib.error.HTTPError as error:
            print("bad request:", error.code, json.load(error)["error"]["code"])
        print(json.dumps({k: claims[k] for k in ["x-ms-attestation-type", "x-ms-sgx-mrenclave", "x-enclavekit-simulated"]}))
        """#

    @Test func curlAndPyJWTClients() async throws {
        let python = try #require(Self.python, "no Python with PyJWT on this machine")
        try await ServiceFixture.with { fixture in
            let runtime = Array("python".utf8)
            let body = ServiceFixture.body(evidence: try fixture.evidence(binding: runtime), runtimeData: runtime)
            let bodyPath = fixture.directory + "/body.json"
            try Data(body.utf8).write(to: URL(fileURLWithPath: bodyPath))
            let scriptPath = fixture.directory + "/client.py"
            try Data(Self.pythonClient.utf8).write(to: URL(fileURLWithPath: scriptPath))
            let identity = try TLSIdentity.selfSigned(directory: fixture.directory + "/tls-data")
            let caPath = fixture.directory + "/service-certificate.pem"
            try Data(identity.certificateChainPEM.utf8).write(to: URL(fileURLWithPath: caPath))
            let running = try await AttestationServer.start(core: fixture.core, tls: identity)
            do {
                let base = "https://127.0.0.1:\(running.port)"

                // Without the service's certificate, curl refuses the connection (exit 60: peer not verified).
                let unverified = try ChildProcess.run("/usr/bin/curl", ["-s", base + "/certs"])
                #expect(unverified.status == 60, "\(unverified.output)")

                let curl = try ChildProcess.run(
                    "/usr/bin/curl",
                    ["-s", "--cacert", caPath, "-w", "\n%{http_code}", base + "/.well-known/openid-configuration"]
                )
                #expect(curl.output.hasSuffix("\n200"), "\(curl.output)")
                #expect(
                    curl.output.contains("\"jwks_uri\":\"http:\\/\\/attestation.test\\/certs\"")
                        || curl.output.contains("\"jwks_uri\":\"http://attestation.test/certs\"")
                )
                let refused = try ChildProcess.run(
                    "/usr/bin/curl",
                    [
                        "-s", "--cacert", caPath, "-w", "\n%{http_code}", "-X", "POST", "--data-binary",
                        "@" + bodyPath,
                        base + "/attest/TdxVm",
                    ]
                )
                #expect(refused.output.hasSuffix("\n400"), "\(refused.output)")
                #expect(refused.output.contains("\"code\":\"WrongEvidenceType\""), "\(refused.output)")

                let result = try ChildProcess.run(python, [scriptPath, base, bodyPath, caPath])
                #expect(result.status == 0, "\(result.output)")
                #expect(
                    result.output.contains("untrusted certificate refused: SSLCertVerificationError"),
                    "\(result.output)"
                )
                #expect(result.output.contains("bad request: 400 InvalidBase64"), "\(result.output)")
                #expect(!result.output.contains("ACCEPTED"), "\(result.output)")
                #expect(
                    result.output.contains("\"x-ms-sgx-mrenclave\": \"\(fixture.identity.uniqueID.hex)\""),
                    "\(result.output)"
                )
                #expect(result.output.contains("\"x-enclavekit-simulated\": true"), "\(result.output)")
            } catch {
                await running.stop()
                throw error
            }
            await running.stop()
        }
    }
}

@Suite("Relying party: JWKS fetched and cached")
struct CachingVerifierTests {
    @Test func fetchesOnceAndAgainForAnUnknownKey() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("cache".utf8)
            let body = ServiceFixture.body(evidence: try fixture.evidence(binding: runtime), runtimeData: runtime)
            let app = Application(
                router: AttestationServer.router(core: fixture.core),
                configuration: .init(address: .hostname("127.0.0.1", port: 0))
            )
            try await app.test(.live) { client in
                let port = try #require(client.port)
                let token = try #require(
                    try await client.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(string: body)
                    )
                    .json["token"] as? String
                )
                let service = AttestationClient(endpoint: URL(string: "http://127.0.0.1:\(port)")!)
                let cached = CachingTokenVerifier(client: service, minimumRefreshInterval: 0)
                _ = try await cached.verify(token)
                _ = try await cached.verify(token)
                #expect(await cached.fetches == 1)
                // The challenge is checked through the cache too: this token's evidence bound none.
                let unbound = await #expect(throws: TokenVerifier.Failure.self) {
                    try await cached.verify(token, challenge: "a-challenge-never-bound")
                }
                #expect(unbound?.reason.contains("x-enclavekit-challenge") == true, "\(String(describing: unbound))")
                // A token naming another key: the key set is fetched again, and the token still refused.
                let parts = token.split(separator: ".").map(String.init)
                let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"rotated-away"}"#.utf8))
                let unknown = await #expect(throws: TokenVerifier.Failure.self) {
                    try await cached.verify(header + "." + parts[1] + "." + parts[2])
                }
                #expect(unknown?.unknownKey == true, "\(String(describing: unknown))")
                #expect(await cached.fetches == 2)
            }
        }
    }
}
