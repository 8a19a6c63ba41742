public import AttestationAPI
internal import AttestationService
internal import Crypto
public import EnclaveCore
public import EnclaveHost
internal import Foundation
public import KeyBrokerInterface

/// The product's ``BrokerEngine``: the broker enclave (`KeyBrokerEnclave`, signed and measured like any EnclaveKit
/// enclave), loaded through EnclaveHost and called through `KeyBrokerInterface`'s ECALLs. The host only carries
/// opaque blobs and public parts.
///
/// ``open(enclave:sealedKeyringPath:authorities:brokerName:requireExisting:)`` unseals the keyring kept at `sealedKeyringPath`
/// (sealed by the enclave under its signer policy, so an upgrade keeps access and a downgrade can't read it), or has
/// the enclave make one and writes it there (0600) on first start.
public final class EnclaveBrokerEngine: BrokerEngine {
    /// The loaded broker enclave.
    public let enclave: Enclave
    private let opened: BrokerIdentity

    init(enclave: Enclave, opened: BrokerIdentity) {
        self.enclave = enclave
        self.opened = opened
    }

    /// Open the broker in `enclave`: unseal the keyring at `sealedKeyringPath` (or make one and write it there when
    /// the file doesn't exist; with `requireExisting`, refuse instead: a replica joins rather than making its own),
    /// pinning `authorities`.
    public static func open(
        enclave: Enclave,
        sealedKeyringPath: String,
        authorities: [BrokerAuthority],
        brokerName: String,
        requireExisting: Bool = false
    ) async throws -> EnclaveBrokerEngine {
        let sealed = FileManager.default.contents(atPath: sealedKeyringPath).map { Array($0) }
        if sealed == nil, requireExisting {
            throw ServiceError(
                status: .internalServerError,
                code: "NoKeyring",
                message: "no sealed keyring at \(sealedKeyringPath): join a running instance first"
            )
        }
        let response = try await enclave.call(
            BrokerOpen.self,
            BrokerOpenRequest(sealedKeyring: sealed, authorities: authorities, brokerName: brokerName)
        )
        if let newSealed = response.newSealedKeyring {
            guard sealed == nil else {
                throw ServiceError.internal("the broker enclave made a new keyring although one was given")
            }
            try SecretFile.write(newSealed, to: sealedKeyringPath, mode: 0o600, replacing: false)
        }
        return EnclaveBrokerEngine(enclave: enclave, opened: try identity(response))
    }

    /// A newcomer replica's join: `BrokerJoinRequest` in `enclave`, the offer's evidence attested by `attest`
    /// (evidence and runtime data → token from a trusted authority), the token and key taken to a running instance by
    /// `grant`, the granter enclave's evidence in the answer attested by `attest` too, and `BrokerJoinComplete` with
    /// that token and `authorities` (the newcomer enclave checks the granter with them); the sealed keyring is written
    /// to `sealedKeyringPath` (which must not exist).
    public static func join(
        enclave: Enclave,
        sealedKeyringPath: String,
        authorities: [BrokerAuthority],
        attest: @Sendable (AttestationEvidence, [UInt8]) async throws -> String,
        grant: @Sendable (ReplicaJoinRequest) async throws -> ReplicaJoinGrant
    ) async throws {
        guard !FileManager.default.fileExists(atPath: sealedKeyringPath) else {
            throw ServiceError.badRequest("KeyringExists", "\(sealedKeyringPath) already holds a sealed keyring")
        }
        let offer = try await enclave.call(BrokerJoinRequest.self, Empty())
        let token = try await attest(offer.evidence, offer.runtimeData)
        let answer = try await grant(ReplicaJoinRequest(token: token, key: offer.key))
        guard answer.evidence.utf8.count <= 1 << 20, answer.runtimeData.utf8.count <= 64 << 10,
            let evidenceJSON = Base64URL.decode(answer.evidence),
            let runtimeData = Base64URL.decode(answer.runtimeData),
            let granterEvidence = try? WireJSON.decode(AttestationEvidence.self, from: evidenceJSON)
        else {
            throw ServiceError.badRequest("BadParameter", "the running instance's grant carries no readable evidence")
        }
        let granterToken = try await attest(granterEvidence, runtimeData)
        let sealed = try await enclave.call(
            BrokerJoinComplete.self,
            BrokerJoinCompleteRequest(grant: answer.grant, granterToken: granterToken, authorities: authorities)
        )
        try SecretFile.write(sealed, to: sealedKeyringPath, mode: 0o600, replacing: false)
    }

    static func identity(_ response: BrokerOpenResponse) throws -> BrokerIdentity {
        let importText = Array(response.importKey.utf8)
        guard let value = try? WireJSON.decode(TokenValue.self, from: importText), case .object(let members) = value
        else {
            throw ServiceError.internal("the broker enclave's import key is not a JWK")
        }
        func member(_ name: String) -> String? {
            if case .string(let text)? = members[name] { return text }
            return nil
        }
        let importKey = KeyBrokerWebKey(
            kid: member("kid"),
            kty: member("kty") ?? "RSA",
            keyOps: ["wrapKey"],
            n: member("n"),
            e: member("e")
        )
        let digest = SHA256.hash(data: Array((importKey.n ?? "").utf8) + [0] + Array((importKey.e ?? "").utf8))
        return BrokerIdentity(
            certificateDER: response.signingCertificate,
            importKey: importKey,
            evidence: try WireJSON.encode(response.evidence),
            runtimeData: response.runtimeData,
            keyringID: digest.map { String(format: "%02x", $0) }.joined()
        )
    }

    public func identity() async throws -> BrokerIdentity { opened }

    public func createKey(_ request: BrokerCreateKeyRequest) async throws -> StoredKey {
        try await enclave.call(BrokerCreateKey.self, request)
    }

    public func importKey(_ request: BrokerImportKeyRequest) async throws -> StoredKey {
        try await enclave.call(BrokerImportKey.self, request)
    }

    public func release(_ request: BrokerReleaseRequest) async throws -> BrokerReleaseResponse {
        try await enclave.call(BrokerRelease.self, request)
    }

    public func updatePolicy(_ request: BrokerUpdatePolicyRequest) async throws -> StoredKey {
        try await enclave.call(BrokerUpdatePolicy.self, request)
    }

    public func unwrap(_ request: BrokerUnwrapRequest) async throws -> [UInt8] {
        try await enclave.call(BrokerUnwrap.self, request)
    }

    public func wrap(_ request: BrokerWrapRequest) async throws -> [UInt8] {
        try await enclave.call(BrokerWrap.self, request)
    }

    public func grantJoin(_ request: BrokerJoinGrantRequest) async throws -> BrokerJoinGrantResponse {
        try await enclave.call(BrokerJoinGrant.self, request)
    }
}
