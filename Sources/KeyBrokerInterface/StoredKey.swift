internal import EnclaveCore

/// A key as the host stores it: its names, attributes, public part and the secret part wrapped under the broker's
/// master key (AES-256-GCM, associated data binding name, version, type, operations, attributes and the authority
/// pins the key may be released under). The host never sees the secret part.
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

extension StoredKey {
    /// The at-rest envelope's format: the first byte of ``blob``. Format 2 names the authority pins in a header the
    /// envelope authenticates; format 1 (before pins) is refused (`KeyBlobOutdated`).
    public static let blobFormat: UInt8 = 2

    /// The authority pins the blob's header names: the signing certificates the key may be released under. Read here
    /// for display and audit only; the broker enclave authenticates them (the envelope's associated data) when it
    /// opens the blob. `nil` when the blob has no readable format-2 header.
    public var pinnedAuthorities: AuthorityPins? {
        guard blob.first == Self.blobFormat else { return nil }
        var reader = ByteReader(Array(blob.dropFirst()))
        return try? AuthorityPins.read(&reader)
    }
}
