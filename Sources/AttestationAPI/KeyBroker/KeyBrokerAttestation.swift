/// The answer to `GET /attestation`: the broker enclave's own evidence, so that a client checks it talks to a genuine
/// broker enclave (signer, product, security version) before importing a key. The evidence's report data binds
/// SHA-256 of `runtimeData` (the JSON of the signing certificate's and import key's digests), as the attestation
/// service expects.
public struct KeyBrokerAttestation: Codable, Hashable, Sendable {
    /// The evidence (a simulated or real quote), base64url.
    public var evidence: String
    /// The runtime data the evidence binds, base64url.
    public var runtimeData: String
    /// The broker's signing certificate (the `x5c` of release answers), base64 DER.
    public var certificate: String
    /// The broker's import key (wrap BYOK keys to it).
    public var importKey: KeyBrokerWebKey

    /// An attestation with the members given.
    public init(evidence: String, runtimeData: String, certificate: String, importKey: KeyBrokerWebKey) {
        self.evidence = evidence
        self.runtimeData = runtimeData
        self.certificate = certificate
        self.importKey = importKey
    }
}
