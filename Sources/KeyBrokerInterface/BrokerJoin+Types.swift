public import EnclaveCore

/// ``BrokerJoinRequest``'s answer: the newcomer's ephemeral key and evidence binding it.
public struct BrokerJoinOffer: Codable, Sendable {
    /// The ephemeral public key, an EC P-256 JWK (JSON text).
    public var key: String
    /// JSON `{"keys": [key]}`; its SHA-256 leads the evidence's report data. Send it as the attestation service's
    /// JSON `runtimeData`, so the token carries the key in `x-ms-runtime.keys`.
    public var runtimeData: [UInt8]
    /// Evidence binding ``runtimeData``.
    public var evidence: AttestationEvidence

    /// An offer.
    public init(key: String, runtimeData: [UInt8], evidence: AttestationEvidence) {
        self.key = key
        self.runtimeData = runtimeData
        self.evidence = evidence
    }
}

/// ``BrokerJoinGrant``'s input: the newcomer's token from a trusted authority and the key it offers.
public struct BrokerJoinGrantRequest: Codable, Hashable, Sendable {
    /// The attestation token of the newcomer's evidence (its `x-ms-runtime.keys` must hold ``key``).
    public var token: String
    /// The newcomer's ephemeral public key (``BrokerJoinOffer/key``).
    public var key: String

    /// A grant request.
    public init(token: String, key: String) {
        self.token = token
        self.key = key
    }
}

/// ``BrokerJoinGrant``'s answer: the keyring wrapped to the newcomer's key, and the granter enclave's evidence
/// binding the newcomer's key and the keyring's public identity (for the newcomer enclave to authenticate the granter).
public struct BrokerJoinGrantResponse: Codable, Hashable, Sendable {
    /// JWE compact, `ECDH-ES+A256KW` / `A256GCM`, to the offered key.
    public var grant: String
    /// JSON `{"purpose", "newcomer": key, "keyring": identity}`; its SHA-256 leads the evidence's report data. Send it
    /// as the attestation service's JSON `runtimeData`, so the token carries it in `x-ms-runtime`.
    public var runtimeData: [UInt8]
    /// The granter enclave's evidence binding ``runtimeData`` (made by the enclave's ECALL; `nil` from the pure
    /// `KeyBroker.grantJoin`).
    public var evidence: AttestationEvidence?

    /// A grant.
    public init(grant: String, runtimeData: [UInt8], evidence: AttestationEvidence? = nil) {
        self.grant = grant
        self.runtimeData = runtimeData
        self.evidence = evidence
    }
}

/// ``BrokerJoinComplete``'s input: the grant from the running replica, the attestation token of the granter
/// enclave's evidence, and the authorities to verify it with (the ones the broker will pin for release tokens).
public struct BrokerJoinCompleteRequest: Codable, Hashable, Sendable {
    /// ``BrokerJoinGrantResponse/grant``.
    public var grant: String
    /// The token of ``BrokerJoinGrantResponse/evidence`` with its runtime data, from a trusted authority.
    public var granterToken: String
    /// The authorities whose tokens the newcomer accepts (at least one). The certificate that signed
    /// ``granterToken`` is sealed with the keyring: the broker opens it only while trusting that certificate.
    public var authorities: [BrokerAuthority]

    /// A completion request.
    public init(grant: String, granterToken: String, authorities: [BrokerAuthority]) {
        self.grant = grant
        self.granterToken = granterToken
        self.authorities = authorities
    }
}
