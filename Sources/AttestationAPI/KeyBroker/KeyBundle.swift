/// A key version as Key Vault answers it (`KeyBundle`): the public part (`key`, with `kid`), its attributes, its
/// release policy and tags. Never a private part.
public struct KeyBundle: Codable, Hashable, Sendable {
    /// The public part and identifier.
    public var key: KeyBrokerWebKey
    /// Attributes.
    public var attributes: KeyAttributes
    /// The release policy, when the key is exportable.
    public var releasePolicy: KeyReleasePolicy?
    /// Tags.
    public var tags: [String: String]?

    enum CodingKeys: String, CodingKey {
        case key, attributes, tags
        case releasePolicy = "release_policy"
    }

    /// A bundle with the members given.
    public init(
        key: KeyBrokerWebKey,
        attributes: KeyAttributes,
        releasePolicy: KeyReleasePolicy? = nil,
        tags: [String: String]? = nil
    ) {
        self.key = key
        self.attributes = attributes
        self.releasePolicy = releasePolicy
        self.tags = tags
    }
}
