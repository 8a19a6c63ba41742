/// A key as the host stores it: its names, attributes, public part and the secret part wrapped under the broker's
/// master key (AES-256-GCM, associated data binding name, version, type, operations and attributes). The host
/// never sees the secret part.
public struct StoredKey: Codable, Hashable, Sendable {
    /// The key's name.
    public var name: String
    /// The key's version.
    public var version: String
    /// The key's kind.
    public var type: BrokerKeyType
    /// Key Vault `key_ops` (`encrypt`, `decrypt`, `wrapKey`, `unwrapKey`, `sign`, `verify`).
    public var keyOperations: [String]
    /// The release attributes.
    public var attributes: BrokerKeyAttributes
    /// The public part as a JWK (JSON text), `nil` for AES keys.
    public var publicKey: String?
    /// The at-rest envelope: the secret part sealed under the master key. Opaque to the host.
    public var blob: [UInt8]

    /// A stored key.
    public init(
        name: String,
        version: String,
        type: BrokerKeyType,
        keyOperations: [String],
        attributes: BrokerKeyAttributes,
        publicKey: String?,
        blob: [UInt8]
    ) {
        self.name = name
        self.version = version
        self.type = type
        self.keyOperations = keyOperations
        self.attributes = attributes
        self.publicKey = publicKey
        self.blob = blob
    }
}
