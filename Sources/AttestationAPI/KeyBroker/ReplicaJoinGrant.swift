/// The answer to `POST /replicas/join`: the keyring wrapped to the newcomer's enclave key by the running instance's
/// enclave (JWE compact, `ECDH-ES+A256KW` / `A256GCM`; opaque to the hosts), and that enclave's evidence binding the
/// newcomer's key and the keyring's public identity. The newcomer's host has the evidence attested and hands the
/// token to its enclave, which accepts the keyring only from a granter with its own signer and product.
public struct ReplicaJoinGrant: Codable, Hashable, Sendable {
    /// The grant.
    public var grant: String
    /// The granter enclave's evidence (JSON of the evidence), base64url.
    public var evidence: String
    /// The runtime data the evidence binds (JSON; send it as the attestation service's JSON `runtimeData`), base64url.
    public var runtimeData: String

    /// A grant with the members given.
    public init(grant: String, evidence: String, runtimeData: String) {
        self.grant = grant
        self.evidence = evidence
        self.runtimeData = runtimeData
    }
}
