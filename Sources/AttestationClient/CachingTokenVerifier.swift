public import Foundation
internal import Synchronization

/// A relying party's verifier that fetches the service's JWKS and issuer, keeps them for `maxAge`, and fetches
/// again — at most once per `minimumRefreshInterval` — when a token names a key it does not know (key rotation).
///
/// Whoever can hand the relying party a token decides when it asks for a fetch, so the fetches are bounded by the
/// verifier, not by its callers:
/// - **One fetch at a time.** A caller that needs the key set while a fetch is under way waits for that fetch and
///   shares its result (single flight): a burst of tokens naming unknown keys, or arriving as the cache expires,
///   costs one fetch.
/// - **At most one fetch per `minimumRefreshInterval`, counted from when it starts, failed or not.** Within the
///   interval, a caller that would fetch gets the last fetch's outcome: its key set, or its error again (fail closed:
///   a key set past `maxAge` is not used after a failed fetch). A token whose `kid` the newest key set does not have
///   is refused without a fetch.
///
/// - **One deadline over each fetch, `fetchTimeout`:** the JWKS and the issuer, headers and bodies (each at most
///   4 MiB). A service that answers one byte at a time would otherwise hold the fetch, and every caller waiting on
///   it, for as long as it likes (the HTTP client's timeout ends with the response headers, and its read timeout
///   restarts with each byte). Past the deadline the fetch fails (``AttestationClient/Failure`` `Timeout`), like
///   any failed fetch, for every caller waiting on it.
///
/// Intervals are measured on a monotonic clock (`ContinuousClock`), so a change of the system time neither stops
/// refreshes nor keeps a key set beyond `maxAge`.
public actor CachingTokenVerifier {
    /// A key set and the fetch it came from (fetches number 1, 2, … in the order they succeed).
    private struct Entry: Sendable {
        var verifier: TokenVerifier
        var fetched: ContinuousClock.Instant
        var generation: Int
    }

    private let client: AttestationClient
    private let maxAge: Duration
    private let minimumRefreshInterval: Duration
    private let clockSkew: TimeInterval
    private let fetchTimeout: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private var current: Entry?
    /// When the last fetch started, and its error if it failed.
    private var lastAttempt: (started: ContinuousClock.Instant, failure: (any Error)?)?
    /// The fetch under way, which every caller that needs one awaits.
    private var inFlight: Task<Entry, any Error>?

    /// Fetches from `client` on first use.
    ///
    /// - Parameters:
    ///   - client: the attestation service's client; its `/certs` and OpenID configuration give the keys and issuer.
    ///   - maxAge: how long a fetched key set is used (seconds) before the next token fetches it again.
    ///   - minimumRefreshInterval: the shortest time between two fetches (seconds), whether the first one succeeded
    ///     or failed.
    ///   - clockSkew: the ``TokenVerifier/clockSkew`` of the verifiers made.
    ///   - fetchTimeout: the longest a fetch may take, headers and bodies (seconds), after which it fails with
    ///     ``AttestationClient/Failure`` `Timeout`.
    public init(
        client: AttestationClient,
        maxAge: TimeInterval = 3600,
        minimumRefreshInterval: TimeInterval = 30,
        clockSkew: TimeInterval = 60,
        fetchTimeout: TimeInterval = 30
    ) {
        self.init(
            client: client,
            maxAge: maxAge,
            minimumRefreshInterval: minimumRefreshInterval,
            clockSkew: clockSkew,
            fetchTimeout: fetchTimeout,
            now: { ContinuousClock.now }
        )
    }

    /// As ``init(client:maxAge:minimumRefreshInterval:clockSkew:fetchTimeout:)``, with the clock the intervals are
    /// measured on (tests drive it; the fetch's deadline is real time).
    package init(
        client: AttestationClient,
        maxAge: TimeInterval = 3600,
        minimumRefreshInterval: TimeInterval = 30,
        clockSkew: TimeInterval = 60,
        fetchTimeout: TimeInterval = 30,
        now: @escaping @Sendable () -> ContinuousClock.Instant
    ) {
        self.client = client
        self.maxAge = Self.duration(maxAge)
        self.minimumRefreshInterval = Self.duration(minimumRefreshInterval)
        self.clockSkew = clockSkew
        self.fetchTimeout = Self.duration(fetchTimeout)
        self.now = now
    }

    /// How many times the key set has been fetched (successfully).
    public private(set) var fetches = 0

    /// Verify `token` (see ``TokenVerifier/verify(_:nonce:challenge:at:)``).
    ///
    /// Pass the challenge you fetched (`GET /challenge`) and had the TEE bind as `challenge`: that is the freshness
    /// check; `nonce` only correlates a response with its request.
    /// - Throws: ``TokenVerifier/Failure`` naming the check the token failed, or ``AttestationClient/Failure`` when the
    ///   keys can't be fetched (also for the rest of `minimumRefreshInterval` after a failed fetch, when the key set
    ///   is needed).
    public func verify(
        _ token: String,
        nonce: String? = nil,
        challenge: String? = nil,
        at time: Date = Date()
    ) async throws -> AttestationTokenClaims {
        let entry = try await usable()
        do {
            return try await entry.verifier.verify(token, nonce: nonce, challenge: challenge, at: time)
        } catch let failure as TokenVerifier.Failure where failure.unknownKey {
            guard let newer = try await newer(than: entry.generation) else { throw failure }
            return try await newer.verifier.verify(token, nonce: nonce, challenge: challenge, at: time)
        }
    }

    /// The key set to verify with: the current one while younger than `maxAge`, else the fetch under way, else the
    /// last fetch's outcome within `minimumRefreshInterval`, else a new fetch.
    private func usable() async throws -> Entry {
        let time = now()
        if let current, time - current.fetched < maxAge { return current }
        if let inFlight { return try await inFlight.value }
        if let lastAttempt, time - lastAttempt.started < minimumRefreshInterval {
            if let failure = lastAttempt.failure { throw failure }
            if let current { return current }
        }
        return try await fetch(startingAt: time)
    }

    /// A key set newer than the one of `generation` (which lacked a token's key): one fetched since, the fetch under
    /// way, or a new fetch once `minimumRefreshInterval` has passed since the last one started; `nil` within it.
    private func newer(than generation: Int) async throws -> Entry? {
        if let current, current.generation > generation { return current }
        if let inFlight {
            let entry = try await inFlight.value
            return entry.generation > generation ? entry : nil
        }
        let time = now()
        if let lastAttempt, time - lastAttempt.started < minimumRefreshInterval { return nil }
        return try await fetch(startingAt: time)
    }

    /// Start the one fetch, counted from `time` before it awaits anything, and wait for it.
    private func fetch(startingAt time: ContinuousClock.Instant) async throws -> Entry {
        lastAttempt = (time, nil)
        // The task updates this actor's state before its value is available, so every caller resumes to it.
        let task = Task { try await self.run(startedAt: time) }
        inFlight = task
        return try await task.value
    }

    private func run(startedAt time: ContinuousClock.Instant) async throws -> Entry {
        defer { inFlight = nil }
        do {
            let (client, clockSkew) = (self.client, self.clockSkew)
            let fresh = try await Deadline.run(within: fetchTimeout, what: "the key set from \(client.endpoint)") {
                try await client.verifier(clockSkew: clockSkew)
            }
            fetches += 1
            let entry = Entry(verifier: fresh, fetched: time, generation: fetches)
            current = entry
            return entry
        } catch {
            lastAttempt = (time, error)
            throw error
        }
    }

    /// One operation against a deadline: its outcome, or `Timeout` once the deadline passes, whichever comes first.
    /// At the deadline the operation is cancelled but not awaited, so one that does not stop when cancelled (a
    /// handshake, a body read that ignores it) holds no caller beyond its deadline.
    private final class Deadline<T: Sendable>: Sendable {
        private struct State {
            var waiter: CheckedContinuation<T, any Error>?
            var finished = false
            var work: Task<Void, Never>?
        }

        private let state = Mutex(State())

        /// Resume the waiter with `result` unless it was resumed already; whether this call did. A timeout also
        /// cancels the work.
        private func finish(_ result: Result<T, any Error>, cancellingWork: Bool) -> Bool {
            let (waiter, work) = state.withLock { state -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?) in
                guard !state.finished else { return (nil, nil) }
                state.finished = true
                defer { state.waiter = nil }
                return (state.waiter, cancellingWork ? state.work : nil)
            }
            work?.cancel()
            waiter?.resume(with: result)
            return waiter != nil
        }

        /// Record the work, or cancel it when the deadline has passed already.
        private func started(_ work: Task<Void, Never>) {
            let timedOut = state.withLock { state -> Bool in
                state.work = work
                return state.finished
            }
            if timedOut { work.cancel() }
        }

        static func run(
            within limit: Duration,
            what: String,
            _ operation: @escaping @Sendable () async throws -> T
        ) async throws -> T {
            let deadline = Deadline()
            return try await withCheckedThrowingContinuation { continuation in
                deadline.state.withLock { $0.waiter = continuation }
                let timer = Task {
                    guard (try? await Task.sleep(for: limit)) != nil else { return }
                    let timeout = AttestationClient.Failure(
                        status: 0,
                        code: "Timeout",
                        message: "\(what) took longer than \(limit) (headers and body)"
                    )
                    _ = deadline.finish(.failure(timeout), cancellingWork: true)
                }
                deadline.started(
                    Task {
                        let result: Result<T, any Error>
                        do { result = .success(try await operation()) } catch { result = .failure(error) }
                        if deadline.finish(result, cancellingWork: false) { timer.cancel() }
                    }
                )
            }
        }
    }

    /// `seconds` as a duration: zero for a negative or NaN value, capped at 10^15 s.
    private static func duration(_ seconds: TimeInterval) -> Duration {
        guard seconds > 0 else { return .zero }
        guard seconds < 1e15 else { return .seconds(Int64(1e15)) }
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }
}
