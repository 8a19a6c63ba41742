import AttestationClient
import Foundation
import Testing

/// A network attacker who answers a plain-HTTP attestation service's `/certs`, OpenID configuration and `/attest`
/// vouches for whatever it likes: the client refuses `http://` to anything but this machine's loopback, by name and
/// before it connects (192.0.2.1 is TEST-NET-1: a connection attempt would hang until the connect timeout).
@Suite("AttestationClient: plain HTTP only to loopback")
struct PlainHTTPTransportTests {
    static let remote = URL(string: "http://192.0.2.1:8080")!

    func expectInsecure(
        _ body: () async throws -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let started = ContinuousClock.now
        let failure = await #expect(throws: AttestationClient.Failure.self, sourceLocation: sourceLocation) {
            try await body()
        }
        #expect(failure?.code == "InsecureTransport", "\(String(describing: failure))", sourceLocation: sourceLocation)
        #expect(failure?.status == 0, sourceLocation: sourceLocation)
        #expect(ContinuousClock.now - started < .seconds(5), "it tried to connect", sourceLocation: sourceLocation)
    }

    @Test func aRemotePlainHTTPServiceIsRefusedBeforeAnyConnection() async throws {
        await expectInsecure { _ = try await AttestationClient(endpoint: Self.remote).certificates() }
        await expectInsecure { _ = try await AttestationClient(endpoint: Self.remote).verifier() }
        await expectInsecure { _ = try await AttestationClient(endpoint: Self.remote, trust: .system).issuer() }
        await expectInsecure {
            _ = try await AttestationClient(endpoint: URL(string: "http://attest.example.com")!).challenge()
        }
        #expect(throws: AttestationClient.Failure.self) { try AttestationClient.checkTransport(Self.remote) }
    }

    @Test func loopbackAndHTTPSPass() throws {
        for text in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8080", "https://192.0.2.1:8443"] {
            let url = try #require(URL(string: text))
            #expect(throws: Never.self, "\(text)") { try AttestationClient.checkTransport(url) }
        }
        for text in ["http://127.0.0.1.example.com", "http://10.0.0.1", "ftp://127.0.0.1"] {
            let url = try #require(URL(string: text))
            #expect(throws: AttestationClient.Failure.self, "\(text)") { try AttestationClient.checkTransport(url) }
        }
    }
}
