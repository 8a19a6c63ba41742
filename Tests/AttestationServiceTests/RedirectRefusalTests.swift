import AttestationClient
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Testing

/// A service (or whoever answers for it) that redirects the client elsewhere: AsyncHTTPClient follows redirects by
/// default, so the request — its administrator token, its evidence — went to the redirect's target, another host or
/// plain http. The clients of this module follow none: the redirect is refused by name (`UnexpectedRedirect`, naming
/// the location) and its target is never reached (review 5).
@Suite("AttestationClient, KeyBrokerClient: redirects are refused, not followed")
struct RedirectRefusalTests {
    /// A loopback server on a free port: `answer` for every request, each recorded (path and whether it carried an
    /// `Authorization` header).
    final class LocalServer: Sendable {
        struct Hit: Sendable {
            var path: String
            var authorized: Bool
        }

        /// What the server was asked, in order.
        final class Hits: Sendable {
            let value = Mutex<[Hit]>([])

            func record(_ request: Request) {
                value.withLock {
                    $0.append(Hit(path: request.uri.path, authorized: request.headers[.authorization] != nil))
                }
            }

            var paths: [String] { value.withLock { $0.map(\.path) } }
            var all: [Hit] { value.withLock { $0 } }
        }

        let hits = Hits()
        let port: Int
        private let task: Task<Void, any Error>

        init(answer: @escaping @Sendable (Request) -> Response) async throws {
            let router = Router()
            let hits = self.hits
            let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                hits.record(request)
                return answer(request)
            }
            router.get("**", use: handler)
            router.post("**", use: handler)
            router.put("**", use: handler)
            (task, port) = try await Loopback.serve(router)
        }

        var base: String { "http://127.0.0.1:\(port)" }
        var url: URL { URL(string: base)! }

        func stop() async {
            task.cancel()
            _ = await task.result
        }
    }

    /// A target that answers anything with an empty JSON object (enough for every call to succeed or to fail on
    /// content), and a service that redirects every request there with 302.
    static func withRedirect(
        _ body: (_ redirector: LocalServer, _ target: LocalServer) async throws -> Void
    )
        async throws
    {
        let target = try await LocalServer { _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: "{}"))
            )
        }
        let location = target.base
        let redirector = try await LocalServer { request in
            Response(status: .found, headers: [.location: location + request.uri.path])
        }
        do {
            try await body(redirector, target)
        } catch {
            await redirector.stop()
            await target.stop()
            throw error
        }
        await redirector.stop()
        await target.stop()
    }

    /// The failure of `call`, which must be `UnexpectedRedirect` naming `location`.
    static func expectRedirectRefused(
        to location: String,
        _ call: () async throws -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let failure = await #expect(throws: AttestationClient.Failure.self, sourceLocation: sourceLocation) {
            try await call()
        }
        #expect(failure?.code == "UnexpectedRedirect", "\(String(describing: failure))", sourceLocation: sourceLocation)
        #expect(failure?.message.contains("HTTP 302") == true, sourceLocation: sourceLocation)
        #expect(
            failure?.message.contains(location) == true,
            "\(String(describing: failure))",
            sourceLocation: sourceLocation
        )
    }

    /// The attestation client made without an HTTP client (it used `HTTPClient.shared`, which followed the redirect,
    /// and `/certs` came from the target), and the one made with a trust setting, sending the administrator's token:
    /// refused, the target never reached.
    @Test func theAttestationClientFollowsNoRedirect() async throws {
        try await Self.withRedirect { redirector, target in
            let plain = AttestationClient(endpoint: redirector.url)
            await Self.expectRedirectRefused(to: target.base + "/certs") { _ = try await plain.certificates() }
            await Self.expectRedirectRefused(to: target.base + "/attest/SgxEnclave") {
                _ = try await plain.attest(type: "SgxEnclave", evidence: [1, 2, 3])
            }
            let trusted = AttestationClient(endpoint: redirector.url, trust: .system)
            await Self.expectRedirectRefused(to: target.base + "/policies/SgxEnclave") {
                try await trusted.setPolicy(type: "SgxEnclave", jws: "a.b.", adminToken: "secret-admin-token")
            }
            #expect(target.hits.paths.isEmpty, "the target was reached: \(target.hits.paths)")
            #expect(redirector.hits.all.count == 3)
            #expect(redirector.hits.all.last?.authorized == true)
        }
    }

    /// The key broker client with a trust setting (as every command and the clean room host make it) sends its
    /// administrator token to the service it was given only; one given an HTTP client that follows redirects
    /// (`HTTPClient.shared`) has sent it on by the time the answer arrives, and that answer is refused all the same.
    @Test func theKeyBrokerClientFollowsNoRedirect() async throws {
        try await Self.withRedirect { redirector, target in
            let broker = KeyBrokerClient(endpoint: redirector.url, trust: .system, adminToken: "secret-admin-token")
            await Self.expectRedirectRefused(to: target.base + "/keys") { _ = try await broker.listKeys() }
            #expect(target.hits.paths.isEmpty, "the target was reached: \(target.hits.paths)")
            #expect(redirector.hits.all.first?.authorized == true)

            let following = KeyBrokerClient(endpoint: redirector.url, httpClient: .shared, adminToken: "token")
            let failure = await #expect(throws: AttestationClient.Failure.self) { _ = try await following.listKeys() }
            #expect(failure?.code == "UnexpectedRedirect", "\(String(describing: failure))")
            #expect(failure?.message.contains("the HTTP client given followed it") == true)
            #expect(target.hits.paths == ["/keys"])
        }
    }
}
