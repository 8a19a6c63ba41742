public import Foundation

/// A relying party's verifier that fetches the service's JWKS and issuer, keeps them for `maxAge`, and fetches
/// again — at most once per `minimumRefreshInterval` — when a token names a key it does not know (key rotation).
public actor CachingTokenVerifier {
    private let client: AttestationClient
    private let maxAge: TimeInterval
    private let minimumRefreshInterval: TimeInterval
    private let clockSkew: TimeInterval
    private var current: (verifier: TokenVerifier, fetched: Date)?

    /// Fetches from `client` on first use.
    public init(
        client: AttestationClient,
        maxAge: TimeInterval = 3600,
        minimumRefreshInterval: TimeInterval = 30,
        clockSkew: TimeInterval = 60
    ) {
        self.client = client
        self.maxAge = maxAge
        self.minimumRefreshInterval = minimumRefreshInterval
        self.clockSkew = clockSkew
    }

    /// How many times the key set has been fetched.
    public private(set) var fetches = 0

    /// Verify `token` (see ``TokenVerifier/verify(_:nonce:challenge:at:)``).
    ///
    /// Pass the challenge you fetched (`GET /challenge`) and had the TEE bind as `challenge`: that is the freshness
    /// check; `nonce` only correlates a response with its request.
    /// - Throws: ``TokenVerifier/Failure`` naming the check the token failed, or ``AttestationClient/Failure`` when the
    ///   keys can't be fetched.
    public func verify(
        _ token: String,
        nonce: String? = nil,
        challenge: String? = nil,
        at time: Date = Date()
    ) async throws -> AttestationTokenClaims {
        let verifier = try await verifier(now: Date(), force: false)
        do {
            return try await verifier.verify(token, nonce: nonce, challenge: challenge, at: time)
        } catch let failure as TokenVerifier.Failure where failure.unknownKey {
            guard let fetched = current?.fetched, Date().timeIntervalSince(fetched) >= minimumRefreshInterval else {
                throw failure
            }
            return try await self.verifier(now: Date(), force: true).verify(
                token,
                nonce: nonce,
                challenge: challenge,
                at: time
            )
        }
    }

    private func verifier(now: Date, force: Bool) async throws -> TokenVerifier {
        if !force, let current, now.timeIntervalSince(current.fetched) < maxAge { return current.verifier }
        let fresh = try await client.verifier(clockSkew: clockSkew)
        fetches += 1
        current = (fresh, now)
        return fresh
    }
}
