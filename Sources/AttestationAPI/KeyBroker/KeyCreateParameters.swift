/// The body of `PUT|POST /keys/{name}/create`, as Key Vault's `KeyCreateParameters`: the key type (`RSA`, `EC`,
/// `oct`, or their `-HSM` spellings), its size or curve, operations, attributes and release policy. The key is made
/// inside the broker enclave; its private part never leaves it except by release.
public struct KeyCreateParameters: Codable, Hashable, Sendable {
    /// `RSA`, `RSA-HSM`, `EC`, `EC-HSM`, `oct` or `oct-HSM`.
    public var kty: String
    /// RSA: 2048 or 3072; `oct`: 256.
    public var keySize: Int?
    /// EC: `P-256` or `P-384`.
    public var crv: String?
    /// Allowed operations (`encrypt`, `decrypt`, `wrapKey`, `unwrapKey`, `sign`, `verify`); default: all the type has.
    public var keyOps: [String]?
    /// `enabled`, `exportable`, `nbf`, `exp`.
    public var attributes: KeyAttributes?
    /// Required when `attributes.exportable` is true.
    public var releasePolicy: KeyReleasePolicy?
    /// Free-form tags (at most 15, as Key Vault).
    public var tags: [String: String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kty, crv, tags, attributes
        case keySize = "key_size"
        case keyOps = "key_ops"
        case releasePolicy = "release_policy"
    }

    /// Parameters with the members given.
    public init(
        kty: String,
        keySize: Int? = nil,
        crv: String? = nil,
        keyOps: [String]? = nil,
        attributes: KeyAttributes? = nil,
        releasePolicy: KeyReleasePolicy? = nil,
        tags: [String: String]? = nil
    ) {
        self.kty = kty
        self.keySize = keySize
        self.crv = crv
        self.keyOps = keyOps
        self.attributes = attributes
        self.releasePolicy = releasePolicy
        self.tags = tags
    }

    /// Reads the parameters, refusing unknown members (also in `attributes` and `release_policy`).
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kty = try container.decode(String.self, forKey: .kty)
        keySize = try container.decodeIfPresent(Int.self, forKey: .keySize)
        crv = try container.decodeIfPresent(String.self, forKey: .crv)
        keyOps = try container.decodeIfPresent([String].self, forKey: .keyOps)
        attributes = try container.decodeIfPresent(KeyAttributes.self, forKey: .attributes)
        releasePolicy = try container.decodeIfPresent(KeyReleasePolicy.self, forKey: .releasePolicy)
        tags = try container.decodeIfPresent([String: String].self, forKey: .tags)
    }
}
