/// A key's release attributes: bound into its wrapped blob (the associated data of the at-rest envelope holds their
/// digest), so the host can't change them without the broker enclave.
public struct BrokerKeyAttributes: Codable, Hashable, Sendable {
    /// Whether the key may leave the broker (released to an attested enclave). Requires ``releasePolicy``.
    public var exportable: Bool
    /// The release policy, JSON text in Key Vault's grammar; required when ``exportable``.
    public var releasePolicy: [UInt8]?
    /// Whether the release policy can never change.
    public var immutable: Bool

    /// Attributes for a key.
    public init(exportable: Bool, releasePolicy: [UInt8]?, immutable: Bool) {
        self.exportable = exportable
        self.releasePolicy = releasePolicy
        self.immutable = immutable
    }
}
