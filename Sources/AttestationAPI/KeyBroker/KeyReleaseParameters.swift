/// The body of `POST /keys/{name}/{version}/release` (Key Vault's `KeyReleaseParameters`): the attestation token
/// (`target`), an optional nonce the token must carry, and the wrapping algorithm (`enc`).
public struct KeyReleaseParameters: Codable, Hashable, Sendable {
    /// The attestation token (a JWT from a trusted authority) whose `x-ms-runtime.keys` names the key to wrap to.
    public var target: String
    /// A nonce the token must carry (`x-ms-runtime.nonce` or `nonce`), for freshness.
    public var nonce: String?
    /// `RSA_AES_KEY_WRAP_256` (default for RSA targets), `CKM_RSA_AES_KEY_WRAP`, or `ECDH-ES+A256KW` (EC targets).
    public var enc: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case target, nonce, enc
    }

    /// Parameters with the members given.
    public init(target: String, nonce: String? = nil, enc: String? = nil) {
        self.target = target
        self.nonce = nonce
        self.enc = enc
    }

    /// Reads the parameters, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        target = try container.decode(String.self, forKey: .target)
        nonce = try container.decodeIfPresent(String.self, forKey: .nonce)
        enc = try container.decodeIfPresent(String.self, forKey: .enc)
    }
}
