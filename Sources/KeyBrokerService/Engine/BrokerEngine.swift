public import AttestationAPI
public import KeyBrokerInterface

/// Where the broker's key operations run: the broker enclave (`KeyBrokerEnclave`, through the ECALLs of
/// `KeyBrokerInterface`). The host's service (``KeyBrokerCore``) stores only what an engine answers (`StoredKey`:
/// wrapped blobs and public parts) and hands them back for each operation; it never holds a private key.
///
/// The product's engine is ``EnclaveBrokerEngine``. Tests of routing and storage may use another engine; nothing
/// the CLI runs does.
public protocol BrokerEngine: Sendable {
    /// The broker enclave's public identity: signing certificate, import key, evidence.
    func identity() async throws -> BrokerIdentity
    /// `BrokerCreateKey`.
    func createKey(_ request: BrokerCreateKeyRequest) async throws -> StoredKey
    /// `BrokerImportKey`.
    func importKey(_ request: BrokerImportKeyRequest) async throws -> StoredKey
    /// `BrokerRelease`: a release JWS or a refusal, with what the audit log records.
    func release(_ request: BrokerReleaseRequest) async throws -> BrokerReleaseResponse
    /// `BrokerUpdatePolicy`.
    func updatePolicy(_ request: BrokerUpdatePolicyRequest) async throws -> StoredKey
    /// `BrokerUnwrap` (Key Vault's `unwrapkey`).
    func unwrap(_ request: BrokerUnwrapRequest) async throws -> [UInt8]
    /// `BrokerWrap` (Key Vault's `wrapkey`, for AES keys).
    func wrap(_ request: BrokerWrapRequest) async throws -> [UInt8]
    /// `BrokerJoinGrant`: the keyring wrapped to an attested newcomer.
    func grantJoin(_ request: BrokerJoinGrantRequest) async throws -> BrokerJoinGrantResponse
}

/// The broker enclave's public identity (`GET /attestation`, `GET /importkey`).
public struct BrokerIdentity: Sendable, Hashable {
    /// The signing certificate (DER) whose key signs release answers.
    public var certificateDER: [UInt8]
    /// The import key, as a JWK (public part).
    public var importKey: KeyBrokerWebKey
    /// Evidence binding `runtimeData` (its bytes as the attestation service takes them).
    public var evidence: [UInt8]
    /// The runtime data the evidence binds.
    public var runtimeData: [UInt8]
    /// An identifier of the keyring (not secret: a digest of its public import key), the same on every replica
    /// that shares it.
    public var keyringID: String

    /// An identity with the members given.
    public init(
        certificateDER: [UInt8],
        importKey: KeyBrokerWebKey,
        evidence: [UInt8],
        runtimeData: [UInt8],
        keyringID: String
    ) {
        self.certificateDER = certificateDER
        self.importKey = importKey
        self.evidence = evidence
        self.runtimeData = runtimeData
        self.keyringID = keyringID
    }
}
