public import AttestationAPI
internal import EnclaveCore
public import Foundation
internal import KeyBrokerInterface
internal import SQLiteNIO

/// The embedded store: `keybroker.sqlite` in the data directory (0600, directory 0700), for one instance: it holds
/// the directory's lock while open (a second store on it is refused `DataDirectoryInUse`), so every change to its
/// keys goes through it and the key versions it read are kept until its next change (`KeyVersionCache`: a release
/// reads its key without a database round trip, and still sees a new policy, a disabled or deleted key at once). The
/// audit table is append-only: triggers abort any `UPDATE` or `DELETE` on it.
public final class SQLiteKeyBrokerStore: KeyBrokerStore {
    private let connection: SQLiteConnection
    private let lock: DataDirectoryLock
    /// Key versions read, until the next change (``KeyVersionCache``).
    let keyVersions = KeyVersionCache()

    /// Open (creating) `directory/keybroker.sqlite`; the directory is created 0700 and checked as the attestation
    /// service's is. Throws `DataDirectoryInUse` while another store has the directory open.
    public static func open(directory: String) async throws -> SQLiteKeyBrokerStore {
        try SecretFile.prepareDirectory(directory, what: "data directory")
        let lock = try DataDirectoryLock(directory: directory)
        do {
            let path = directory + "/keybroker.sqlite"
            try SecretFile.createEmpty(path)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            let connection = try await SQLiteConnection.open(storage: .file(path: path))
            let store = SQLiteKeyBrokerStore(connection: connection, lock: lock)
            do {
                _ = try await connection.query("PRAGMA journal_mode=WAL")
                _ = try await connection.query("PRAGMA busy_timeout=5000")
                try await store.migrate()
            } catch {
                try? await store.close()
                throw error
            }
            return store
        } catch {
            lock.release()
            throw error
        }
    }

    private init(connection: SQLiteConnection, lock: DataDirectoryLock) {
        self.connection = connection
        self.lock = lock
    }

    public func migrate() async throws {
        for statement in [
            "CREATE TABLE IF NOT EXISTS kb_keys (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL, deleted REAL, UNIQUE (name, version))",
            "CREATE INDEX IF NOT EXISTS kb_keys_name ON kb_keys (name)",
            "CREATE TABLE IF NOT EXISTS kb_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, operation TEXT NOT NULL, key TEXT, version TEXT, result TEXT NOT NULL, reason TEXT NOT NULL, issuer TEXT, jti TEXT, claims TEXT)",
            "CREATE TRIGGER IF NOT EXISTS kb_audit_no_update BEFORE UPDATE ON kb_audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
            "CREATE TRIGGER IF NOT EXISTS kb_audit_no_delete BEFORE DELETE ON kb_audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
            "CREATE TABLE IF NOT EXISTS kb_master (id INTEGER PRIMARY KEY CHECK (id = 1), key_id TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS kb_refusals (id INTEGER PRIMARY KEY AUTOINCREMENT, minute INTEGER NOT NULL, key TEXT NOT NULL, code TEXT NOT NULL, count INTEGER NOT NULL, UNIQUE (minute, key, code))",
            "CREATE INDEX IF NOT EXISTS kb_refusals_minute ON kb_refusals (minute)",
            // The names an owner imported a key under: kept after a purge, so the name never passes to another origin.
            "CREATE TABLE IF NOT EXISTS kb_owner_names (name TEXT PRIMARY KEY)",
        ] {
            _ = try await connection.query(statement)
        }
        // Each version's origin (KeyOrigin): a column, so that the insert checks it in its own statement. Versions
        // stored before it have none (NULL: not an owner's).
        let columns = try await connection.query("PRAGMA table_info(kb_keys)")
        if !columns.contains(where: { $0.column("name")?.string == "origin" }) {
            _ = try await connection.query("ALTER TABLE kb_keys ADD COLUMN origin TEXT")
        }
        // An owner's version records its name in the same statement as the insert.
        _ = try await connection.query(
            """
            CREATE TRIGGER IF NOT EXISTS kb_keys_owner_name AFTER INSERT ON kb_keys WHEN NEW.origin = 'owner'
            BEGIN INSERT OR IGNORE INTO kb_owner_names (name) VALUES (NEW.name); END
            """
        )
    }

    /// Run `sql` as is (tests: prove the audit table refuses changes).
    package func execute(_ sql: String) async throws {
        try await keyVersions.change { _ = try await connection.query(sql) }
    }

    public func insertVersion(_ version: StoredKeyVersion, created: Date) async throws -> Bool {
        try await keyVersions.change { try await insert(version, created: created) }
    }

    /// One statement checks and inserts (SQLite runs it atomically; a trigger records an owner's name): a deleted
    /// name, a name an owner holds (or held), and for an owner's version any name with versions are refused. Queries
    /// from concurrent tasks interleave on the connection, so the check can't be a query of its own.
    private func insert(_ version: StoredKeyVersion, created: Date) async throws -> Bool {
        let origin = version.attributes.origin
        let inserted = try await connection.query(
            """
            INSERT INTO kb_keys (name, version, record, created, deleted, origin) SELECT ?1, ?2, ?3, ?4, NULL, ?5
            WHERE NOT EXISTS (SELECT 1 FROM kb_keys WHERE name = ?1 AND deleted IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM kb_owner_names WHERE name = ?1)
            """
                + (origin == .owner ? " AND NOT EXISTS (SELECT 1 FROM kb_keys WHERE name = ?1)" : "")
                + " RETURNING seq",
            [
                .text(version.name), .text(version.version), .text(try Self.encode(version)),
                .float(created.timeIntervalSince1970), Self.optional(origin?.rawValue),
            ]
        )
        guard inserted.isEmpty else { return true }
        // Refused: say why (an owner's name first: even deleted or purged, it takes no other version).
        let reasons = try await connection.query(
            """
            SELECT EXISTS (SELECT 1 FROM kb_owner_names WHERE name = ?1) AS owned,
            EXISTS (SELECT 1 FROM kb_keys WHERE name = ?1 AND deleted IS NOT NULL) AS deleted
            """,
            [.text(version.name)]
        )
        if reasons.first?.column("owned")?.integer == 1 { throw KeyNameRefusal.ownedByImporter }
        if reasons.first?.column("deleted")?.integer == 1 { return false }
        throw KeyNameRefusal.inUse
    }

    public func version(name: String, version: String) async throws -> StoredKeyVersion? {
        try await keyVersions.record(name: name, version: version) {
            let rows = try await connection.query(
                "SELECT record FROM kb_keys WHERE name = ? AND version = ? AND deleted IS NULL",
                [.text(name), .text(version)]
            )
            return try rows.first.map { try Self.decode($0) }
        }
    }

    public func latestVersion(name: String) async throws -> StoredKeyVersion? {
        try await keyVersions.record(name: name, version: nil) {
            let rows = try await connection.query(
                "SELECT record FROM kb_keys WHERE name = ? AND deleted IS NULL ORDER BY seq DESC LIMIT 1",
                [.text(name)]
            )
            return try rows.first.map { try Self.decode($0) }
        }
    }

    public func versions(name: String) async throws -> [StoredKeyVersion] {
        let rows = try await connection.query(
            "SELECT record FROM kb_keys WHERE name = ? AND deleted IS NULL ORDER BY seq",
            [.text(name)]
        )
        return try rows.map { try Self.decode($0) }
    }

    public func latestVersions(limit: Int) async throws -> [StoredKeyVersion] {
        let rows = try await connection.query(
            """
            SELECT record FROM kb_keys WHERE seq IN (SELECT MAX(seq) FROM kb_keys WHERE deleted IS NULL GROUP BY name)
            ORDER BY name LIMIT ?
            """,
            [.integer(limit)]
        )
        return try rows.map { try Self.decode($0) }
    }

    /// One statement checks and updates: an owner's version (its origin column) is never replaced. A version's
    /// origin never changes once stored, so the follow-up query that says why is not a race.
    public func replaceVersion(_ version: StoredKeyVersion) async throws -> Bool {
        try await keyVersions.change {
            let rows = try await connection.query(
                """
                UPDATE kb_keys SET record = ?1 WHERE name = ?2 AND version = ?3 AND deleted IS NULL
                AND (origin IS NULL OR origin <> 'owner') RETURNING seq
                """,
                [.text(try Self.encode(version)), .text(version.name), .text(version.version)]
            )
            guard rows.isEmpty else { return true }
            let owned = try await connection.query(
                "SELECT 1 FROM kb_keys WHERE name = ?1 AND version = ?2 AND deleted IS NULL AND origin = 'owner'",
                [.text(version.name), .text(version.version)]
            )
            if !owned.isEmpty { throw KeyNameRefusal.ownedByImporter }
            return false
        }
    }

    public func setDeleted(name: String, at: Date?) async throws -> Bool {
        try await keyVersions.change { try await markDeleted(name: name, at: at) }
    }

    private func markDeleted(name: String, at: Date?) async throws -> Bool {
        let rows: [SQLiteRow]
        if let at {
            rows = try await connection.query(
                "UPDATE kb_keys SET deleted = ? WHERE name = ? AND deleted IS NULL RETURNING seq",
                [.float(at.timeIntervalSince1970), .text(name)]
            )
        } else {
            rows = try await connection.query(
                "UPDATE kb_keys SET deleted = NULL WHERE name = ? AND deleted IS NOT NULL RETURNING seq",
                [.text(name)]
            )
        }
        return !rows.isEmpty
    }

    public func deletedKey(name: String) async throws -> (version: StoredKeyVersion, deleted: Date)? {
        let rows = try await connection.query(
            "SELECT record, deleted FROM kb_keys WHERE name = ? AND deleted IS NOT NULL ORDER BY seq DESC LIMIT 1",
            [.text(name)]
        )
        guard let row = rows.first, let deleted = row.column("deleted")?.double else { return nil }
        return (try Self.decode(row), Date(timeIntervalSince1970: deleted))
    }

    public func purge(name: String) async throws -> Bool {
        try await keyVersions.change {
            let rows = try await connection.query(
                "DELETE FROM kb_keys WHERE name = ? AND deleted IS NOT NULL RETURNING seq",
                [.text(name)]
            )
            return !rows.isEmpty
        }
    }

    public func appendAudit(_ entry: KeyBrokerAuditEntry) async throws {
        _ = try await connection.query(
            "INSERT INTO kb_audit (time, operation, key, version, result, reason, issuer, jti, claims) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .float(entry.time), .text(entry.operation), Self.optional(entry.key), Self.optional(entry.version),
                .text(entry.result), .text(entry.reason), Self.optional(entry.issuer), Self.optional(entry.jti),
                Self.optional(entry.claims),
            ]
        )
    }

    /// One multi-row `INSERT`: one statement, one transaction, one sync for the whole batch.
    public func appendAudit(batch entries: [KeyBrokerAuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        var binds: [SQLiteData] = []
        binds.reserveCapacity(entries.count * 9)
        for entry in entries {
            binds += [
                .float(entry.time), .text(entry.operation), Self.optional(entry.key), Self.optional(entry.version),
                .text(entry.result), .text(entry.reason), Self.optional(entry.issuer), Self.optional(entry.jti),
                Self.optional(entry.claims),
            ]
        }
        let rows = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", count: entries.count).joined(separator: ", ")
        _ = try await connection.query(
            "INSERT INTO kb_audit (time, operation, key, version, result, reason, issuer, jti, claims) VALUES " + rows,
            binds
        )
    }

    public func auditEntries(limit: Int) async throws -> [KeyBrokerAuditEntry] {
        let rows = try await connection.query(
            "SELECT id, time, operation, key, version, result, reason, issuer, jti, claims FROM kb_audit ORDER BY id DESC LIMIT ?",
            [.integer(limit)]
        )
        return rows.compactMap { row in
            guard let id = row.column("id")?.integer, let time = row.column("time")?.double,
                let operation = row.column("operation")?.string, let result = row.column("result")?.string,
                let reason = row.column("reason")?.string
            else { return nil }
            return KeyBrokerAuditEntry(
                id: Int64(id),
                time: time,
                operation: operation,
                key: row.column("key")?.string,
                version: row.column("version")?.string,
                result: result,
                reason: reason,
                issuer: row.column("issuer")?.string,
                jti: row.column("jti")?.string,
                claims: row.column("claims")?.string
            )
        }
    }

    /// Multi-row upserts of at most 1,000 rows (within SQLite's bound parameters): one statement, one sync for a
    /// usual batch.
    public func countRefusals(_ counts: [KeyBrokerRefusalCount]) async throws {
        var start = counts.startIndex
        while start < counts.endIndex {
            let end = min(start + 1000, counts.endIndex)
            var binds: [SQLiteData] = []
            binds.reserveCapacity((end - start) * 4)
            for count in counts[start..<end] {
                binds += [.integer(Int(count.minute)), .text(count.key), .text(count.code), .integer(Int(count.count))]
            }
            let rows = Array(repeating: "(?, ?, ?, ?)", count: end - start).joined(separator: ", ")
            _ = try await connection.query(
                "INSERT INTO kb_refusals (minute, key, code, count) VALUES " + rows
                    + " ON CONFLICT (minute, key, code) DO UPDATE SET count = count + excluded.count",
                binds
            )
            start = end
        }
    }

    public func pruneRefusals(before minute: Int64, keepingAtMost limit: Int) async throws {
        _ = try await connection.query("DELETE FROM kb_refusals WHERE minute < ?", [.integer(Int(minute))])
        // The newest `limit` rows by id stay. Not MAX(id) - limit: an upsert that meets its row still takes an id, so
        // ids have gaps, and one refusal repeated anonymously would push every other row out (review 5).
        guard limit > 0 else {
            _ = try await connection.query("DELETE FROM kb_refusals", [])
            return
        }
        _ = try await connection.query(
            "DELETE FROM kb_refusals WHERE id < (SELECT id FROM kb_refusals ORDER BY id DESC LIMIT 1 OFFSET ?)",
            [.integer(limit - 1)]
        )
    }

    public func refusalCounts(limit: Int) async throws -> [KeyBrokerRefusalCount] {
        let rows = try await connection.query(
            "SELECT minute, key, code, count FROM kb_refusals ORDER BY id DESC LIMIT ?",
            [.integer(max(0, limit))]
        )
        return rows.compactMap { row in
            guard let minute = row.column("minute")?.integer, let key = row.column("key")?.string,
                let code = row.column("code")?.string, let count = row.column("count")?.integer
            else { return nil }
            return KeyBrokerRefusalCount(minute: Int64(minute), key: key, code: code, count: Int64(count))
        }
    }

    public func keyringID(orInsert candidate: String) async throws -> String {
        _ = try await connection.query("INSERT OR IGNORE INTO kb_master (id, key_id) VALUES (1, ?)", [.text(candidate)])
        guard let id = try await keyringID() else {
            throw KeyBrokerCore.failure("the keyring's identifier did not persist")
        }
        return id
    }

    public func keyringID() async throws -> String? {
        let rows = try await connection.query("SELECT key_id FROM kb_master WHERE id = 1")
        return rows.first?.column("key_id")?.string
    }

    /// Closes the connection and releases the data directory's lock.
    public func close() async throws {
        defer { lock.release() }
        try await connection.close()
    }

    static func optional(_ text: String?) -> SQLiteData { text.map { .text($0) } ?? .null }

    static func encode(_ version: StoredKeyVersion) throws -> String {
        try WireJSON.string(version)
    }

    /// Records decoded once per distinct text (a release reads its key's record every time).
    static let records = RecordDecodeCache<StoredKeyVersion>()

    static func decode(_ row: SQLiteRow) throws -> StoredKeyVersion {
        guard let text = row.column("record")?.string else {
            throw KeyBrokerCore.failure("a stored key record is missing")
        }
        do {
            return try records.value(for: text) { try WireJSON.decode(StoredKeyVersion.self, from: Array($0.utf8)) }
        } catch {
            throw KeyBrokerCore.failure("a stored key record does not decode")
        }
    }
}
