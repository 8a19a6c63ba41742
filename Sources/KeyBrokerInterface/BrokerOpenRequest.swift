public import EnclaveCore

/// An attestation authority the broker trusts: its issuer URL and its pinned token signing certificates.
public struct BrokerAuthority: Codable, Hashable, Sendable {
    /// The authority's base URL, as tokens name it in `iss` and policies in `authority`.
    public var url: String
    /// The authority's token signing certificates, DER. A token verifies only with one of these keys, never with
    /// a key the token points at (`jku`, `x5u`, `jwk`, `x5c` headers are ignored).
    public var certificates: [[UInt8]]

    /// An authority and its pinned signing certificates.
    public init(url: String, certificates: [[UInt8]]) {
        self.url = url
        self.certificates = certificates
    }
}

/// What the host gives the broker enclave when it opens.
public struct BrokerOpenRequest: Codable, Sendable {
    /// The keyring sealed by an earlier open (or by ``BrokerJoinComplete``); `nil` to make a new one. A joined keyring
    /// opens only when ``authorities`` pin the certificate that signed its granter's token (`KeyringAuthorityNotTrusted`);
    /// a keyring sealed by an older broker (format 1) is refused (`KeyringOutdated`).
    public var sealedKeyring: [UInt8]?
    /// The authorities whose tokens the broker accepts.
    public var authorities: [BrokerAuthority]
    /// The broker's name (its URL), put in its signing certificate's subject and in its evidence's runtime data.
    public var brokerName: String

    /// An open request.
    public init(sealedKeyring: [UInt8]?, authorities: [BrokerAuthority], brokerName: String) {
        self.sealedKeyring = sealedKeyring
        self.authorities = authorities
        self.brokerName = brokerName
    }
}

/// What the broker enclave answers when it opens: its public identity and evidence over it.
public struct BrokerOpenResponse: Codable, Sendable {
    /// The new keyring, sealed under the signer policy, when the request had none: the host must store it.
    public var newSealedKeyring: [UInt8]?
    /// The broker's signing certificate (DER, self-signed inside the enclave, ECDSA P-256): release answers are
    /// JWS signed with its key and carry it in `x5c`.
    public var signingCertificate: [UInt8]
    /// The broker's import key, a public RSA JWK (JSON text): bring-your-own keys are wrapped to it.
    public var importKey: String
    /// JSON `{"broker": name, "keys": [import JWK, signing JWK], "authorities": [{"url", "thumbprints"}, …]}`; its
    /// SHA-256 leads the evidence's report data (the attestation service's `runtimeData` binding), so a client can
    /// check both keys belong to this enclave and which authorities and signing certificates (``AuthorityPins``) it
    /// was opened trusting.
    public var runtimeData: [UInt8]
    /// Evidence binding ``runtimeData``.
    public var evidence: AttestationEvidence

    /// An open answer.
    public init(
        newSealedKeyring: [UInt8]?,
        signingCertificate: [UInt8],
        importKey: String,
        runtimeData: [UInt8],
        evidence: AttestationEvidence
    ) {
        self.newSealedKeyring = newSealedKeyring
        self.signingCertificate = signingCertificate
        self.importKey = importKey
        self.runtimeData = runtimeData
        self.evidence = evidence
    }
}
