public import AttestationAPI
public import Foundation

/// Where the broker keeps wrapped keys, policies and its audit log: SQLite (``SQLiteKeyBrokerStore``) for one
/// instance, PostgreSQL for replicas. The audit log is append-only: the protocol has no way to change or remove a
/// record, and the stores refuse `UPDATE`/`DELETE` on it at the database level. Anonymous release refusals are not
/// in it: they are counted per minute, key and code (`KeyBrokerRefusalCount`) in a table kept bounded.
public protocol KeyBrokerStore: Sendable {
    /// Create the tables when missing.
    func migrate() async throws
    /// Add a version. False when the name is soft-deleted (a deleted name cannot get new versions until recovered or
    /// purged). Throws ``KeyNameRefusal`` when the name belongs to another origin (`version.attributes.origin`): an
    /// owner imported a key under it (kept after a purge), or, for an owner's version, it has versions already. The
    /// check and the insert are one statement or transaction: of concurrent inserts, no two of different origins (and
    /// no two of an owner's) both pass.
    func insertVersion(_ version: StoredKeyVersion, created: Date) async throws -> Bool
    /// A version of a key that is not deleted.
    func version(name: String, version: String) async throws -> StoredKeyVersion?
    /// The newest version of a key that is not deleted.
    func latestVersion(name: String) async throws -> StoredKeyVersion?
    /// Every version of a key that is not deleted, oldest first.
    func versions(name: String) async throws -> [StoredKeyVersion]
    /// The newest version of every key that is not deleted, by name.
    func latestVersions(limit: Int) async throws -> [StoredKeyVersion]
    /// Replace a version (after the enclave re-wrapped it for a new policy). False when it does not exist or is
    /// deleted. Throws ``KeyNameRefusal/ownedByImporter`` when the stored version is an owner's (its recorded origin,
    /// not the one `version` carries): an owner's release policy is not the administrator's to replace. The check and
    /// the update are one statement or transaction.
    func replaceVersion(_ version: StoredKeyVersion) async throws -> Bool
    /// Soft-delete (`at` non-nil) or recover (`at` nil) every version of a key. False when nothing changed.
    func setDeleted(name: String, at: Date?) async throws -> Bool
    /// When a deleted key was deleted, and its newest version; nil when it is not deleted.
    func deletedKey(name: String) async throws -> (version: StoredKeyVersion, deleted: Date)?
    /// Remove a deleted key's versions for good. False when it is not deleted.
    func purge(name: String) async throws -> Bool
    /// Append an audit record.
    func appendAudit(_ entry: KeyBrokerAuditEntry) async throws
    /// Append audit records in their order, all or none (the audit log's group commit).
    func appendAudit(batch entries: [KeyBrokerAuditEntry]) async throws
    /// The newest `limit` audit records, newest first.
    func auditEntries(limit: Int) async throws -> [KeyBrokerAuditEntry]
    /// Add `counts` to the anonymous refusal counts (one row per minute, key and code: a count already there grows),
    /// all or none. `counts` has at most one entry per minute, key and code.
    func countRefusals(_ counts: [KeyBrokerRefusalCount]) async throws
    /// Delete refusal counts of minutes before `minute`, then all but the `limit` newest rows.
    func pruneRefusals(before minute: Int64, keepingAtMost limit: Int) async throws
    /// The newest `limit` refusal counts, newest first.
    func refusalCounts(limit: Int) async throws -> [KeyBrokerRefusalCount]
    /// The keyring's identifier recorded by the first instance, or `candidate` now recorded. Race-safe: instances
    /// starting at once on one database all get the one identifier that was recorded first.
    func keyringID(orInsert candidate: String) async throws -> String
    /// The keyring's identifier, nil before any instance recorded one (a new instance decides by it whether to make
    /// a keyring or join one).
    func keyringID() async throws -> String?
    /// Close the connection.
    func close() async throws
}

extension KeyBrokerStore {
    /// One ``appendAudit(_:)`` per record (a store that can write several at once does so instead).
    public func appendAudit(batch entries: [KeyBrokerAuditEntry]) async throws {
        for entry in entries { try await appendAudit(entry) }
    }
}
