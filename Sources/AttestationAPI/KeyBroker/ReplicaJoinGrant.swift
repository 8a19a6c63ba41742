/// The answer to `POST /replicas/join`: the keyring wrapped to the newcomer's enclave key by the running instance's
/// enclave (JWE compact, `ECDH-ES+A256KW` / `A256GCM`; opaque to the hosts).
public struct ReplicaJoinGrant: Codable, Hashable, Sendable {
    /// The grant.
    public var grant: String

    /// A grant carrying `grant`.
    public init(grant: String) { self.grant = grant }
}
