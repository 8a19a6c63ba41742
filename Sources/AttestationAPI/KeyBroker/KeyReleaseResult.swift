/// The answer to a release (Key Vault's `KeyReleaseResult`): a JWS signed by the broker enclave's signing key (`x5c`
/// header: the broker's certificate), whose payload carries the key wrapped to the token's key in
/// `response.key.key.key_hsm`.
public struct KeyReleaseResult: Codable, Hashable, Sendable {
    /// The JWS, compact serialization.
    public var value: String

    /// A result carrying `value`.
    public init(value: String) { self.value = value }
}
