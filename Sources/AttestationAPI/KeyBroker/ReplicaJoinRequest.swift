/// The body of `POST /replicas/join` (administrators only): a newcomer broker enclave's evidence binding its
/// ephemeral key, for a running instance's enclave to check (same signer and product, security version at least its
/// own) and to wrap the master key to.
public struct ReplicaJoinRequest: Codable, Hashable, Sendable {
    /// The newcomer's join request as its enclave made it (opaque to the hosts), base64url.
    public var request: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case request
    }

    /// A request carrying `request`.
    public init(request: String) { self.request = request }

    /// Reads the request, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        request = try container.decode(String.self, forKey: .request)
    }
}
