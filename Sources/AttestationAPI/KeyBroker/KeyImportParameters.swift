/// The body of `POST /keys/{name}/import` (Key Vault's `KeyImportParameters`, bring your own key): the key as a JWK
/// whose `key_hsm` holds the private key wrapped to the broker's import key (`GET /importkey`) in
/// `RSA_AES_KEY_WRAP_256` (RSA-OAEP-256 of an ephemeral AES-256 key, then AES key wrap with padding of the key's
/// PKCS#8 DER or raw AES bytes). The key never crosses the wire or the host in the clear.
public struct KeyImportParameters: Codable, Hashable, Sendable {
    /// The key: `kty`, `key_hsm` (base64url of the wrapped key), `kid` (the import key's ID it was wrapped to).
    public var key: KeyBrokerWebKey
    /// Whether to keep it in the HSM (the broker enclave always does; accepted for compatibility).
    public var hsm: Bool?
    /// `enabled`, `exportable`, `nbf`, `exp`.
    public var attributes: KeyAttributes?
    /// Required when `attributes.exportable` is true.
    public var releasePolicy: KeyReleasePolicy?
    /// Free-form tags.
    public var tags: [String: String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case key, attributes, tags
        case hsm = "Hsm"
        case releasePolicy = "release_policy"
    }

    /// Parameters with the members given.
    public init(
        key: KeyBrokerWebKey,
        hsm: Bool? = nil,
        attributes: KeyAttributes? = nil,
        releasePolicy: KeyReleasePolicy? = nil,
        tags: [String: String]? = nil
    ) {
        self.key = key
        self.hsm = hsm
        self.attributes = attributes
        self.releasePolicy = releasePolicy
        self.tags = tags
    }

    /// Reads the parameters, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decode(KeyBrokerWebKey.self, forKey: .key)
        hsm = try container.decodeIfPresent(Bool.self, forKey: .hsm)
        attributes = try container.decodeIfPresent(KeyAttributes.self, forKey: .attributes)
        releasePolicy = try container.decodeIfPresent(KeyReleasePolicy.self, forKey: .releasePolicy)
        tags = try container.decodeIfPresent([String: String].self, forKey: .tags)
    }
}
