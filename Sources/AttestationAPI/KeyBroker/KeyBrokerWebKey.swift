/// A key as Key Vault's `JsonWebKey`: its identifier, type, allowed operations and public part; `key_hsm` carries a
/// wrapped private key (on import, and in a release's payload). Private members (`d`, `p`, `q`, `k`, …) are never
/// part of this type: the broker answers public parts only, and refuses a request that carries them.
public struct KeyBrokerWebKey: Codable, Hashable, Sendable {
    /// `https://{broker}/keys/{name}/{version}`.
    public var kid: String?
    /// `RSA`, `RSA-HSM`, `EC`, `EC-HSM`, `oct`, `oct-HSM`.
    public var kty: String
    /// Allowed operations.
    public var keyOps: [String]?
    /// An RSA key's modulus, base64url.
    public var n: String?
    /// An RSA key's public exponent, base64url.
    public var e: String?
    /// An EC key's curve (`P-256`, `P-384`).
    public var crv: String?
    /// An EC key's x coordinate, base64url.
    public var x: String?
    /// An EC key's y coordinate, base64url.
    public var y: String?
    /// A wrapped private key, base64url (import: wrapped to the import key; release: the wrapped blob's JSON).
    public var keyHSM: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kid, kty, n, e, crv, x, y
        case keyOps = "key_ops"
        case keyHSM = "key_hsm"
    }

    /// A key with the members given (absent ones are left out of the JSON).
    public init(
        kid: String? = nil,
        kty: String,
        keyOps: [String]? = nil,
        n: String? = nil,
        e: String? = nil,
        crv: String? = nil,
        x: String? = nil,
        y: String? = nil,
        keyHSM: String? = nil
    ) {
        self.kid = kid
        self.kty = kty
        self.keyOps = keyOps
        self.n = n
        self.e = e
        self.crv = crv
        self.x = x
        self.y = y
        self.keyHSM = keyHSM
    }

    /// Reads the key, refusing unknown members, private ones (`d`, `k`, …) included.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kid = try container.decodeIfPresent(String.self, forKey: .kid)
        kty = try container.decode(String.self, forKey: .kty)
        keyOps = try container.decodeIfPresent([String].self, forKey: .keyOps)
        n = try container.decodeIfPresent(String.self, forKey: .n)
        e = try container.decodeIfPresent(String.self, forKey: .e)
        crv = try container.decodeIfPresent(String.self, forKey: .crv)
        x = try container.decodeIfPresent(String.self, forKey: .x)
        y = try container.decodeIfPresent(String.self, forKey: .y)
        keyHSM = try container.decodeIfPresent(String.self, forKey: .keyHSM)
    }
}
