public import EnclaveCore

/// ``KeyReleaseAttest``'s input: evidence for the attestation service.
public struct KeyReleaseAttestRequest: Codable, Sendable {
    /// The evidence (for the simulated platform an SGX quote: the service's `OpenEnclave`/`SgxEnclave` types).
    public var evidence: AttestationEvidence
    /// The JSON runtime data whose SHA-256 leads the report data (`{"keys": [JWK]}`, plus `"challenge"` when the
    /// enclave was given one): send as `runtimeData` with `dataType: JSON`.
    public var runtimeData: [UInt8]

    /// An attest request.
    public init(evidence: AttestationEvidence, runtimeData: [UInt8]) {
        self.evidence = evidence
        self.runtimeData = runtimeData
    }
}

/// ``KeyReleaseFetch``'s input: what to ask the broker for.
public struct KeyReleaseFetchRequest: Codable, Hashable, Sendable {
    /// The key's name.
    public var name: String
    /// The key's version; `nil` for the current one.
    public var version: String?
    /// The attestation token to present as `target`.
    public var token: String
    /// The nonce to send (the broker checks the token carries it).
    public var nonce: String?

    /// A fetch request.
    public init(name: String, version: String?, token: String, nonce: String?) {
        self.name = name
        self.version = version
        self.token = token
        self.nonce = nonce
    }
}
