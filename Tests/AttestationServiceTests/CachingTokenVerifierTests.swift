import AttestationClient
import AttestationService
import EnclaveCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// Whoever can hand a relying party a token decides when its `CachingTokenVerifier` wants the key set: the fetches
/// must be bounded by the verifier, not by the callers. Before review 6 (finding G) the actor was re-entered across
/// its fetch and counted the interval from the last *successful* fetch, so 40 concurrent tokens naming unknown `kid`s
/// (or arriving as the cache expired, or while the service failed) made 40 fetches. Here a loopback service counts
/// `/certs` requests and the verifier's interval clock is driven by the test.
@Suite("CachingTokenVerifier: one fetch in flight, at most one per interval (review 6, G)")
struct CachingTokenVerifierTests {
    static let issuer = "http://attestation.test"
    static let burst = 40

    /// A clock the test moves by hand.
    final class DrivenClock: Sendable {
        private let start = ContinuousClock.now
        private let offset = Mutex<Duration>(.zero)

        var now: ContinuousClock.Instant { start + offset.withLock { $0 } }

        func advance(seconds: Int) { offset.withLock { $0 += .seconds(seconds) } }
    }

    /// What the loopback service answers `/certs` with, and how often it was asked.
    final class KeyService: Sendable {
        private struct State {
            var jwks: String
            var failing = false
            var certsRequests = 0
        }

        private let state: Mutex<State>

        init(jwks: String) { state = Mutex(State(jwks: jwks)) }

        var certsRequests: Int { state.withLock { $0.certsRequests } }

        func publish(_ jwks: String) { state.withLock { $0.jwks = jwks } }

        func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }

        var router: Router<BasicRequestContext> {
            let router = Router()
            router.get("certs") { _, _ -> Response in
                let (jwks, failing) = self.state.withLock { state in
                    state.certsRequests += 1
                    return (state.jwks, state.failing)
                }
                // A slow answer, so that a burst of callers overlaps the fetch (without it they would only be less
                // likely to; the counts asserted below hold either way).
                try await Task.sleep(for: .milliseconds(100))
                if failing {
                    return Response(
                        status: .internalServerError,
                        headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"Busy","message":"down"}}"#))
                    )
                }
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: jwks))
                )
            }
            router.get(".well-known/openid-configuration") { _, _ -> Response in
                let body = #"{"issuer":"\#(CachingTokenVerifierTests.issuer)","jwks_uri":"/certs"}"#
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: body))
                )
            }
            return router
        }
    }

    /// A key service that answers `/certs` one byte a second, never finishing, until told to stop; and counts the
    /// requests.
    final class TricklingService: Sendable {
        private let state = Mutex((requests: 0, stopped: false))

        var certsRequests: Int { state.withLock { $0.requests } }

        func stop() { state.withLock { $0.stopped = true } }

        var router: Router<BasicRequestContext> {
            let router = Router()
            router.get("certs") { _, _ -> Response in
                self.state.withLock { $0.requests += 1 }
                let body = ResponseBody(contentLength: 1 << 20) { writer in
                    while !self.state.withLock({ $0.stopped }) {
                        try await writer.write(ByteBuffer(string: " "))
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
            }
            return router
        }
    }

    /// Review 7: the HTTP client's timeout ended with the response headers and its read timeout restarts with each
    /// byte, so a service trickling `/certs` held the single fetch, and every caller waiting on it, as long as it
    /// liked. Now one deadline covers the fetch: a burst of callers all get `Timeout` from the one request, and the
    /// failure counts toward the interval like any other. Failed before: the fetch never ended (the time limit).
    @Test(.timeLimit(.minutes(1)))
    func aTricklingServiceFailsTheFetchAtItsDeadline() async throws {
        let signer = try await Self.signer()
        let valid = try await Self.token(signer)
        let service = TricklingService()
        let app = Application(router: service.router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            defer { service.stop() }
            let port = try #require(client.port)
            let clock = DrivenClock()
            let verifier = CachingTokenVerifier(
                client: AttestationClient(endpoint: URL(string: "http://127.0.0.1:\(port)")!),
                fetchTimeout: 2,
                now: { clock.now }
            )
            let results = await Self.concurrently(verifier, Array(repeating: valid, count: 8))
            for result in results {
                guard case .failure(let error) = result, let failure = error as? AttestationClient.Failure else {
                    Issue.record("expected the deadline's failure, got \(result)")
                    continue
                }
                #expect(failure.code == "Timeout", "\(failure)")
                #expect(failure.message.contains("took longer than"), "\(failure)")
            }
            #expect(service.certsRequests == 1, "one fetch for every caller")
            // Within the interval the failure is answered again without a request.
            await #expect(throws: AttestationClient.Failure.self) { try await verifier.verify(valid) }
            #expect(service.certsRequests == 1)
            #expect(await verifier.fetches == 0)
        }
    }

    /// A P-256 token signer (quick to make).
    static func signer() async throws -> TokenSigner {
        try await TokenSigner(try TokenSigner.generate(issuer: issuer, type: .ec))
    }

    /// An attestation token of `signer`, valid for an hour.
    static func token(_ signer: TokenSigner) async throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        return try await signer.sign(
            [
                "iss": .string(issuer), "iat": .integer(now), "nbf": .integer(now), "exp": .integer(now + 3600),
                "x-ms-attestation-type": .string("sgx"),
            ],
            jku: issuer + "/certs"
        )
    }

    /// `token` with its header naming `kid` instead (the signature no longer matters: the kid is looked up first).
    static func naming(_ kid: String, _ token: String) -> String {
        let parts = token.split(separator: ".").map(String.init)
        let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"\#(kid)","typ":"JWT"}"#.utf8))
        return header + "." + parts[1] + "." + parts[2]
    }

    /// Runs `body` with a loopback key service publishing `jwks`, and a caching verifier of it on a driven clock.
    static func withService(
        jwks: String,
        maxAge: TimeInterval = 3600,
        _ body: @escaping @Sendable (KeyService, CachingTokenVerifier, DrivenClock) async throws -> Void
    ) async throws {
        let service = KeyService(jwks: jwks)
        let clock = DrivenClock()
        let app = Application(router: service.router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let verifier = CachingTokenVerifier(
                client: AttestationClient(endpoint: URL(string: "http://127.0.0.1:\(port)")!),
                maxAge: maxAge,
                minimumRefreshInterval: 30,
                now: { clock.now }
            )
            try await body(service, verifier, clock)
        }
    }

    /// The outcome of each of `tokens`, verified at once.
    static func concurrently(
        _ verifier: CachingTokenVerifier,
        _ tokens: [String]
    ) async -> [Result<AttestationTokenClaims, any Error>] {
        await withTaskGroup(of: Result<AttestationTokenClaims, any Error>.self) { group in
            for token in tokens {
                group.addTask {
                    do { return .success(try await verifier.verify(token)) } catch { return .failure(error) }
                }
            }
            var results: [Result<AttestationTokenClaims, any Error>] = []
            for await result in group { results.append(result) }
            return results
        }
    }

    static func unknownKey(_ result: Result<AttestationTokenClaims, any Error>) -> Bool {
        guard case .failure(let error) = result, let failure = error as? TokenVerifier.Failure else { return false }
        return failure.unknownKey
    }

    /// 40 tokens naming unknown keys at once, on a cold cache and again once the interval has passed: one fetch
    /// each time (failed before: 40 fetches on the cold cache).
    @Test func concurrentUnknownKeysCostOneFetch() async throws {
        let signer = try await Self.signer()
        let valid = try await Self.token(signer)
        try await Self.withService(jwks: signer.jwksJSON) { service, verifier, clock in
            let junk = (0..<Self.burst).map { Self.naming("junk-\($0)", valid) }
            let cold = await Self.concurrently(verifier, junk)
            #expect(cold.allSatisfy(Self.unknownKey), "\(cold)")
            #expect(service.certsRequests == 1)
            // Within the interval, unknown keys cost nothing more; known keys verify from the cache.
            #expect(Self.unknownKey(await Self.concurrently(verifier, [Self.naming("junk-late", valid)])[0]))
            _ = try await verifier.verify(valid)
            #expect(service.certsRequests == 1)
            // Past the interval, a burst of unknown keys is allowed one fetch, shared.
            clock.advance(seconds: 31)
            let warm = await Self.concurrently(verifier, junk)
            #expect(warm.allSatisfy(Self.unknownKey), "\(warm)")
            #expect(service.certsRequests == 2)
            #expect(await verifier.fetches == 2)
        }
    }

    /// The cache expires under a burst of valid tokens: one fetch, and every token verifies (failed before: one fetch
    /// per token).
    @Test func cacheExpiryCostsOneFetch() async throws {
        let signer = try await Self.signer()
        let valid = try await Self.token(signer)
        try await Self.withService(jwks: signer.jwksJSON, maxAge: 600) { service, verifier, clock in
            _ = try await verifier.verify(valid)
            #expect(service.certsRequests == 1)
            clock.advance(seconds: 601)
            let results = await Self.concurrently(verifier, Array(repeating: valid, count: Self.burst))
            #expect(results.allSatisfy { (try? $0.get()) != nil }, "\(results)")
            #expect(service.certsRequests == 2)
        }
    }

    /// A failing service: a burst makes one request, and the failure counts toward the interval — the verifier
    /// refuses (fail closed) without asking again until it has passed, even once the service is back (failed before:
    /// one request per token, and one more per later token).
    @Test func failedFetchesCountTowardTheInterval() async throws {
        let signer = try await Self.signer()
        let valid = try await Self.token(signer)
        try await Self.withService(jwks: signer.jwksJSON) { service, verifier, clock in
            service.fail(true)
            let results = await Self.concurrently(verifier, Array(repeating: valid, count: Self.burst))
            for result in results {
                guard case .failure(let error) = result, let failure = error as? AttestationClient.Failure else {
                    Issue.record("expected the service's failure, got \(result)")
                    continue
                }
                #expect(failure.status == 500, "\(failure)")
            }
            #expect(service.certsRequests == 1)
            service.fail(false)
            await #expect(throws: AttestationClient.Failure.self) { try await verifier.verify(valid) }
            #expect(service.certsRequests == 1)
            clock.advance(seconds: 31)
            _ = try await verifier.verify(valid)
            #expect(service.certsRequests == 2)
            #expect(await verifier.fetches == 1)
        }
    }

    /// Key rotation still works: past the interval, a burst of tokens under a new key costs one fetch and every one
    /// verifies, including those that arrive after the fetch (they use its key set, not the one they started with).
    @Test func aRotatedKeyIsFetchedOnceForABurst() async throws {
        let old = try await Self.signer()
        let new = try await Self.signer()
        try await Self.withService(jwks: old.jwksJSON) { service, verifier, clock in
            _ = try await verifier.verify(try await Self.token(old))
            #expect(service.certsRequests == 1)
            service.publish(new.jwksJSON)
            let rotated = try await Self.token(new)
            // Within the interval the new key is unknown, and no fetch is made for it.
            #expect(Self.unknownKey(await Self.concurrently(verifier, [rotated])[0]))
            #expect(service.certsRequests == 1)
            clock.advance(seconds: 31)
            let results = await Self.concurrently(verifier, Array(repeating: rotated, count: Self.burst))
            #expect(results.allSatisfy { (try? $0.get()) != nil }, "\(results)")
            #expect(service.certsRequests == 2)
        }
    }
}
