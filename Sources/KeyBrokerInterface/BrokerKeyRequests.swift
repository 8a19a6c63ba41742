/// ``BrokerCreateKey``'s input: make a key of ``type`` inside the broker.
public struct BrokerCreateKeyRequest: Codable, Hashable, Sendable {
    /// The key's name.
    public var name: String
    /// The version the host chose (Key Vault: 32 hex digits).
    public var version: String
    /// The kind of key.
    public var type: BrokerKeyType
    /// Key Vault `key_ops`; empty for the type's defaults.
    public var keyOperations: [String]
    /// Release attributes.
    public var attributes: BrokerKeyAttributes

    /// A create request.
    public init(
        name: String,
        version: String,
        type: BrokerKeyType,
        keyOperations: [String] = [],
        attributes: BrokerKeyAttributes
    ) {
        self.name = name
        self.version = version
        self.type = type
        self.keyOperations = keyOperations
        self.attributes = attributes
    }
}

/// ``BrokerImportKey``'s input: a key wrapped to the broker's import key in the `RSA_AES_KEY_WRAP_256` format
/// (RSA-OAEP-256 of an ephemeral AES-256 key, then AES key wrap with padding, RFC 5649, of the key: the raw 32
/// bytes of an AES key, the PKCS #8 DER of an RSA or EC private key).
public struct BrokerImportKeyRequest: Codable, Hashable, Sendable {
    /// The key's name.
    public var name: String
    /// The version the host chose.
    public var version: String
    /// The kind of key the wrapped bytes must be.
    public var type: BrokerKeyType
    /// The wrapped key.
    public var wrappedKey: [UInt8]
    /// Key Vault `key_ops`; empty for the type's defaults.
    public var keyOperations: [String]
    /// Release attributes.
    public var attributes: BrokerKeyAttributes

    /// An import request.
    public init(
        name: String,
        version: String,
        type: BrokerKeyType,
        wrappedKey: [UInt8],
        keyOperations: [String] = [],
        attributes: BrokerKeyAttributes
    ) {
        self.name = name
        self.version = version
        self.type = type
        self.wrappedKey = wrappedKey
        self.keyOperations = keyOperations
        self.attributes = attributes
    }
}

/// ``BrokerUpdatePolicy``'s input: the stored key and its new attributes.
public struct BrokerUpdatePolicyRequest: Codable, Hashable, Sendable {
    /// The key as stored.
    public var key: StoredKey
    /// The new attributes.
    public var attributes: BrokerKeyAttributes

    /// An update request.
    public init(key: StoredKey, attributes: BrokerKeyAttributes) {
        self.key = key
        self.attributes = attributes
    }
}

/// ``BrokerUnwrap``'s input: a data key wrapped with a stored key.
public struct BrokerUnwrapRequest: Codable, Hashable, Sendable {
    /// The key as stored.
    public var key: StoredKey
    /// `RSA-OAEP-256` (RSA keys) or `A256KW` (AES keys, RFC 3394).
    public var algorithm: String
    /// The wrapped data key.
    public var ciphertext: [UInt8]

    /// An unwrap request.
    public init(key: StoredKey, algorithm: String, ciphertext: [UInt8]) {
        self.key = key
        self.algorithm = algorithm
        self.ciphertext = ciphertext
    }
}

/// ``BrokerWrap``'s input: a data key to wrap with a stored key.
public struct BrokerWrapRequest: Codable, Hashable, Sendable {
    /// The key as stored.
    public var key: StoredKey
    /// `RSA-OAEP-256` (RSA keys) or `A256KW` (AES keys, RFC 3394).
    public var algorithm: String
    /// The data key (16 to 64 bytes, a multiple of 8 for `A256KW`).
    public var plaintext: [UInt8]

    /// A wrap request.
    public init(key: StoredKey, algorithm: String, plaintext: [UInt8]) {
        self.key = key
        self.algorithm = algorithm
        self.plaintext = plaintext
    }
}
