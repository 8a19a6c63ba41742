/// The answer to `GET /challenge`: a single-use server nonce to bind into the evidence's runtime data
/// (`{"challenge": …}`), and when it expires (seconds since 1970).
public struct ChallengeResponse: Codable, Hashable, Sendable {
    /// The challenge.
    public var nonce: String
    /// When it expires, in seconds since 1970.
    public var expiresAt: Int

    /// A challenge `nonce` expiring at `expiresAt`.
    public init(nonce: String, expiresAt: Int) {
        self.nonce = nonce
        self.expiresAt = expiresAt
    }
}
