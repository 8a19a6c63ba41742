/// One entry of a key list (Key Vault's `KeyItem`): the key's identifier (`…/keys/{name}` for `GET /keys`,
/// `…/keys/{name}/{version}` for `GET /keys/{name}/versions`), attributes and tags.
public struct KeyItem: Codable, Hashable, Sendable {
    /// The key's (or version's) identifier.
    public var kid: String
    /// Attributes.
    public var attributes: KeyAttributes
    /// Tags.
    public var tags: [String: String]?

    /// An item with the members given.
    public init(kid: String, attributes: KeyAttributes, tags: [String: String]? = nil) {
        self.kid = kid
        self.attributes = attributes
        self.tags = tags
    }
}
