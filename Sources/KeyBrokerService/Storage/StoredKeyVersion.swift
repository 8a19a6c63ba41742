public import AttestationAPI
public import KeyBrokerInterface

/// One key version as the store keeps it: the broker enclave's `StoredKey` (names, release attributes, public part,
/// the blob wrapped under the master key, all bound together by the blob's associated data) and the host's own
/// attributes (enabled, dates) and tags. Nothing here is secret.
public struct StoredKeyVersion: Codable, Sendable, Hashable {
    /// What the broker enclave answered.
    public var key: StoredKey
    /// Attributes (`created`/`updated` set by the broker; `exportable` mirrors `key.attributes`).
    public var attributes: KeyAttributes
    /// Tags.
    public var tags: [String: String]?

    /// A version with the members given.
    public init(key: StoredKey, attributes: KeyAttributes, tags: [String: String]?) {
        self.key = key
        self.attributes = attributes
        self.tags = tags
    }

    /// The key's name.
    public var name: String { key.name }
    /// The version.
    public var version: String { key.version }
}
