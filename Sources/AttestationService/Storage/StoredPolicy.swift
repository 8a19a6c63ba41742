public import Foundation

/// A policy as set: its text, the JWS it came in, and its hash.
public struct StoredPolicy: Hashable, Sendable {
    /// The policy text.
    public var text: String
    /// The JWS the policy came in (signed, or `alg: none`), returned as `x-ms-policy`.
    public var jws: String
    /// MAA's `x-ms-policy-hash` of ``text``.
    public var hash: String
    /// When the policy was set.
    public var updated: Date

    /// A stored policy.
    ///
    /// - Parameters:
    ///   - text: The policy text.
    ///   - jws: The JWS it came in.
    ///   - hash: Its `x-ms-policy-hash`.
    ///   - updated: When it was set.
    public init(text: String, jws: String, hash: String, updated: Date) {
        self.text = text
        self.jws = jws
        self.hash = hash
        self.updated = updated
    }
}
