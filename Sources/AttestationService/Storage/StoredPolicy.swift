public import Foundation

/// A policy as set: its text, the JWS it came in, and its hash.
public struct StoredPolicy: Hashable, Sendable {
    public var text: String
    public var jws: String
    public var hash: String
    public var updated: Date

    public init(text: String, jws: String, hash: String, updated: Date) {
        self.text = text
        self.jws = jws
        self.hash = hash
        self.updated = updated
    }
}
