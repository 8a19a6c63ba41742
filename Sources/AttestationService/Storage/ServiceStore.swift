internal import Crypto
internal import EnclaveCore
public import Foundation

/// What the service keeps: its token signing key, the policy of each attestation type, single-use challenges, and an
/// audit record of every decision. SQLite in a data directory by default; PostgreSQL when several instances share
/// one key set and one set of policies.
public protocol ServiceStore: Sendable {
    /// Create the tables if they do not exist.
    func migrate() async throws
    /// The signing key: the stored one, or `candidate` stored now if there is none. Two instances starting together
    /// both end up with the same key.
    func signingKey(orInsert candidate: StoredSigningKey) async throws -> StoredSigningKey
    /// The policy of an attestation type, if one was set.
    func policy(type: String) async throws -> StoredPolicy?
    /// Set (or with `nil`, reset) the policy of an attestation type.
    func setPolicy(_ policy: StoredPolicy?, type: String) async throws
    /// Remember a challenge until `expires`.
    func insertChallenge(_ nonce: String, expires: Date) async throws
    /// Use a challenge: true once if it exists and has not expired at `time`; it is gone afterwards either way.
    func consumeChallenge(_ nonce: String, at time: Date) async throws -> Bool
    /// Append an audit record.
    func appendAudit(_ record: AuditRecord) async throws
    /// The newest audit records, newest first.
    func auditRecords(limit: Int) async throws -> [AuditRecord]
    /// Close connections.
    func close() async throws
    /// Record `version` as the newest signed policy request for `type` if it is greater than the one recorded (one
    /// statement, so two instances cannot both accept the same version); false, changing nothing, if it is not.
    func advancePolicyVersion(type: String, to version: Int64) async throws -> Bool
    /// Remember a challenge until `expires`, first purging the ones expired at `time`; false (nothing stored) when
    /// `limit` unexpired challenges are outstanding.
    func insertChallenge(_ nonce: String, expires: Date, at time: Date, limit: Int) async throws -> Bool
    /// Delete the audit records older than `time`, and beyond the newest `limit`.
    func pruneAudit(before time: Date, keepingAtMost limit: Int) async throws
    /// The administrator token's SHA-256 all instances share: the stored one, or `candidate` stored now if there
    /// is none (or if `replacing`, to rotate the token).
    func adminTokenDigest(orInsert candidate: [UInt8], replacing: Bool) async throws -> [UInt8]
    /// The administrator token's SHA-256 all instances share, if one is stored (read on management requests, so
    /// that a rotation revokes the old token on every running instance).
    func storedAdminTokenDigest() async throws -> [UInt8]?
    /// The 32-byte key that authenticates challenges: the stored one, or `candidate` stored now if there is none
    /// (every instance sharing the store issues and accepts the same challenges).
    func challengeKey(orInsert candidate: [UInt8]) async throws -> [UInt8]
    /// Record a challenge as used until `expires`, first forgetting the used ones expired at `time`: true once (a
    /// unique insert, so two instances cannot both accept it), false if it was used before.
    func markChallengeConsumed(_ nonce: String, expires: Date, at time: Date) async throws -> Bool
    /// A cached piece of collateral (fetched from a PCCS), by what was fetched.
    func cachedCollateral(key: String) async throws -> CachedCollateral?
    /// Cache a piece of collateral under `key`, replacing the one there.
    func cacheCollateral(_ piece: CachedCollateral, key: String) async throws
    /// The token signing key of `kind` (`ec`: the one ``signingKey(orInsert:)`` keeps; `rsa`): the stored one, or
    /// `candidate` stored now if there is none (nil `candidate`: only read). Instances starting together agree.
    func signingKey(kind: String, orInsert candidate: StoredSigningKey?) async throws -> StoredSigningKey?
    /// The policy management certificates in force (DER), oldest first.
    func policySigners() async throws -> [[UInt8]]
    /// Add the operator's policy signers (`--policy-signer`) the store has never known; one removed through
    /// `/certificates:remove` stays removed.
    func seedPolicySigners(_ certificates: [[UInt8]], at time: Date) async throws
    /// Make `certificate` a policy signer: true if it was not one.
    func addPolicySigner(_ certificate: [UInt8], at time: Date) async throws -> Bool
    /// Stop trusting `certificate` as a policy signer, unless it is the last one (one statement or transaction, so
    /// that two instances cannot together remove the last two).
    func removePolicySigner(_ certificate: [UInt8], at time: Date) async throws -> PolicySignerRemoval
    /// Record the SHA-256 of a signed management request that names no version (MAA's form): true once, false if
    /// it was accepted before, so that such a request cannot be replayed.
    func markPolicyRequestUsed(digest: String, at time: Date) async throws -> Bool
    /// Whether `digest` was recorded by ``markPolicyRequestUsed(digest:at:)`` (a read: records nothing).
    func policyRequestUsed(digest: String) async throws -> Bool
}

extension ServiceStore {
    /// The key of a certificate in the policy signer tables: hex SHA-256 of its DER.
    public static func policySignerKey(_ certificate: [UInt8]) -> String {
        Hex.encode(Array(SHA256.hash(data: certificate)))
    }
}

extension ServiceStore {
    /// A store without a collateral cache: the PCCS source keeps its copies in memory only.
    public func cachedCollateral(key: String) async throws -> CachedCollateral? { nil }
    public func cacheCollateral(_ piece: CachedCollateral, key: String) async throws {}
}
