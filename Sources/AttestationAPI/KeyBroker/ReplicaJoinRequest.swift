/// The body of `POST /replicas/join` (administrators only): a newcomer broker enclave's attestation token (from a
/// trusted authority, over evidence binding its ephemeral key) and that key, for a running instance's enclave to
/// check (same signer and product, security version at least its own) and to wrap the keyring to.
public struct ReplicaJoinRequest: Codable, Hashable, Sendable {
    /// The newcomer's attestation token; its `x-ms-runtime.keys` must hold ``key``.
    public var token: String
    /// The newcomer's ephemeral public key, a JWK (JSON text).
    public var key: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case token, key
    }

    /// A request with the members given.
    public init(token: String, key: String) {
        self.token = token
        self.key = key
    }

    /// Reads the request, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        token = try container.decode(String.self, forKey: .token)
        key = try container.decode(String.self, forKey: .key)
    }
}
