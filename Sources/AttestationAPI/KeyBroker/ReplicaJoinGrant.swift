/// The answer to `POST /replicas/join`: the master key wrapped to the newcomer's enclave key by the running
/// instance's enclave (opaque to the hosts), base64url.
public struct ReplicaJoinGrant: Codable, Hashable, Sendable {
    /// The grant, base64url.
    public var grant: String

    /// A grant carrying `grant`.
    public init(grant: String) { self.grant = grant }
}
