/// The answer to `unwrapkey` (Key Vault's `KeyOperationResult`): the key version used and the result, base64url.
public struct KeyOperationResult: Codable, Hashable, Sendable {
    /// The key version's identifier.
    public var kid: String
    /// The result, base64url.
    public var value: String

    /// A result with the members given.
    public init(kid: String, value: String) {
        self.kid = kid
        self.value = value
    }
}
