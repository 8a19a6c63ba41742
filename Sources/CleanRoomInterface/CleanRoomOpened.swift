public import EnclaveCore

/// What ``CleanRoomOpen`` answers: the runtime data and the evidence that binds it.
///
/// The host carries both to the attestation service as JSON runtime data; the token then holds the contract ID
/// (`x-ms-runtime.contract`) and the enclave's key (`x-ms-runtime.keys`), which a data owner's release policy names
/// and the key broker wraps the data key to.
public struct CleanRoomOpened: Codable, Hashable, Sendable {
    /// The contract ID, lower-case hex.
    public var contractID: String
    /// The runtime data (JSON, sorted keys): `{"challenge"?, "contract", "counterKey"?: JWK, "counterRequestKey"?: JWK,
    /// "keys": [JWK], "receiptKey": JWK}`.
    public var runtimeData: [UInt8]
    /// Evidence whose report data starts with SHA-256 of ``runtimeData``.
    public var evidence: AttestationEvidence

    /// Creates one from its members, each as documented on its property.
    public init(contractID: String, runtimeData: [UInt8], evidence: AttestationEvidence) {
        self.contractID = contractID
        self.runtimeData = runtimeData
        self.evidence = evidence
    }
}
