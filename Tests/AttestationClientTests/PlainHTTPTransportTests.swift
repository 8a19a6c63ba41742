import AttestationClient
import Foundation
import TestSupport
import Testing

/// A network attacker who answers a plain-HTTP attestation service's `/certs`, OpenID configuration and `/attest`
/// vouches for whatever it likes: the client refuses `http://` to anything but this machine's loopback, by name and
/// before it connects. The service named is a ``Tripwire`` (127.0.0.2, not on the loopback list) whose backlog would
/// hold a connection, counted after each refusal: a count, not a stopwatch a loaded machine can run out.
@Suite("AttestationClient: plain HTTP only to loopback")
struct PlainHTTPTransportTests {
    func expectInsecure(
        _ tripwire: Tripwire,
        _ body: () async throws -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let failure = await #expect(throws: AttestationClient.Failure.self, sourceLocation: sourceLocation) {
            try await body()
        }
        #expect(failure?.code == "InsecureTransport", "\(String(describing: failure))", sourceLocation: sourceLocation)
        #expect(failure?.status == 0, sourceLocation: sourceLocation)
        #expect(tripwire.attempts() == 0, "it connected to \(tripwire.url)", sourceLocation: sourceLocation)
    }

    @Test func aRemotePlainHTTPServiceIsRefusedBeforeAnyConnection() async throws {
        let tripwire = try Tripwire()
        let remote = try #require(URL(string: tripwire.url))
        await expectInsecure(tripwire) { _ = try await AttestationClient(endpoint: remote).certificates() }
        await expectInsecure(tripwire) { _ = try await AttestationClient(endpoint: remote).verifier() }
        await expectInsecure(tripwire) { _ = try await AttestationClient(endpoint: remote, trust: .system).issuer() }
        await expectInsecure(tripwire) {
            _ = try await AttestationClient(endpoint: URL(string: "http://attest.example.com")!).challenge()
        }
        #expect(throws: AttestationClient.Failure.self) { try AttestationClient.checkTransport(remote) }
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
