/// A page of keys or versions (Key Vault's `KeyListResult`): `value`, and `nextLink` when more follow.
public struct KeyListResult: Codable, Hashable, Sendable {
    /// The keys.
    public var value: [KeyItem]
    /// The next page's URL, if any.
    public var nextLink: String?

    /// A page of `value`.
    public init(value: [KeyItem], nextLink: String? = nil) {
        self.value = value
        self.nextLink = nextLink
    }
}
