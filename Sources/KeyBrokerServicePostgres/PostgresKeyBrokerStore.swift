public import AttestationAPI
internal import AttestationService
internal import AttestationServicePostgres
internal import EnclaveCore
public import Foundation
public import KeyBrokerService
internal import Logging
internal import PostgresNIO

/// The key broker's store for replicas: one PostgreSQL database shared by every broker instance, with the same
/// semantics as `KeyBrokerService`'s `SQLiteKeyBrokerStore` (versions, soft delete and purge, one keyring
/// identifier, an append-only audit log, names an owner imported under kept from other origins). Changes to one key
/// name are serialized across instances (a transaction-scoped advisory lock per name), so a version can't slip in
/// beside a concurrent delete, nor another origin's beside an owner's import. The audit table refuses
/// `UPDATE`, `DELETE` and `TRUNCATE` by trigger: the store has no path that changes or removes a record.
public final class PostgresKeyBrokerStore: KeyBrokerStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger = Logger(label: "enclavekit.keybroker.postgres")

    /// Connect to `url` (`postgres://user@host[:port]/database[?sslmode=…&sslrootcert=FILE|system]`, TLS as the
    /// attestation service's `--database`: libpq's `sslmode`, `verify-full` the only mode that stops an attacker
    /// on the path and the default toward any host that is not loopback) and create the tables when missing.
    /// `password`, when given, takes precedence over one in the URL. Fails (rather than waiting) when the server
    /// can't be reached, refuses the TLS `sslmode` requires, presents a certificate that does not verify, or
    /// refuses the credentials.
    ///
    /// - Parameters:
    ///   - url: The database; without `sslmode`, `verify-full` unless the host is this machine's loopback.
    ///   - password: The password, taken over one in the URL.
    ///   - allowUnverifiedTLS: Accept `sslmode` `disable`, `allow`, `prefer` or `require` toward a host that is not
    ///     loopback (refused otherwise, `InsecureDatabaseConnection`): anyone on the path could then pose as the
    ///     database and, below `require`, read the password.
    public static func connect(
        url: String,
        password: String? = nil,
        allowUnverifiedTLS: Bool = false
    ) async throws -> PostgresKeyBrokerStore {
        let client = try await PostgresServiceStore.makeClient(
            url: url,
            password: password,
            allowUnverifiedTLS: allowUnverifiedTLS
        )
        let store = PostgresKeyBrokerStore(client: client, runner: Task { await client.run() })
        do {
            try await store.migrate()
        } catch {
            store.runner.cancel()
            throw error
        }
        return store
    }

    private init(client: PostgresClient, runner: Task<Void, Never>) {
        self.client = client
        self.runner = runner
    }

    /// The advisory lock (transaction-scoped) that serializes migrations across instances starting at once.
    static let migrationLock: Int64 = 0x6B62_0001

    public func migrate() async throws {
        let logger = self.logger
        // Two instances starting at once would otherwise race `CREATE TABLE IF NOT EXISTS` (a unique violation in
        // PostgreSQL's catalog) and the trigger's existence check.
        try await client.withTransaction(logger: logger) { connection in
            // READ COMMITTED whatever the server's default (see lockingName): the trigger checks below must see
            // what the instance that held the lock before created.
            try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            for statement in [
                "CREATE TABLE IF NOT EXISTS kb_keys (seq BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, record TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, deleted DOUBLE PRECISION, UNIQUE (name, version))",
                "CREATE INDEX IF NOT EXISTS kb_keys_name ON kb_keys (name)",
                "CREATE TABLE IF NOT EXISTS kb_audit (id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, operation TEXT NOT NULL, key TEXT, version TEXT, result TEXT NOT NULL, reason TEXT NOT NULL, issuer TEXT, jti TEXT, claims TEXT)",
                "CREATE TABLE IF NOT EXISTS kb_master (id INTEGER PRIMARY KEY CHECK (id = 1), key_id TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS kb_refusals (id BIGSERIAL PRIMARY KEY, minute BIGINT NOT NULL, key TEXT NOT NULL, code TEXT NOT NULL, count BIGINT NOT NULL, UNIQUE (minute, key, code))",
                "CREATE INDEX IF NOT EXISTS kb_refusals_minute ON kb_refusals (minute)",
                // Each version's origin (KeyOrigin; NULL in versions stored before it), and the names an owner imported
                // a key under, kept after a purge so that the name never passes to another origin.
                "ALTER TABLE kb_keys ADD COLUMN IF NOT EXISTS origin TEXT",
                "CREATE TABLE IF NOT EXISTS kb_owner_names (name TEXT PRIMARY KEY)",
                """
                CREATE OR REPLACE FUNCTION kb_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$
                """,
                """
                DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'kb_audit_no_change'
                    AND tgrelid = 'kb_audit'::regclass) THEN
                    CREATE TRIGGER kb_audit_no_change BEFORE UPDATE OR DELETE ON kb_audit
                        FOR EACH ROW EXECUTE FUNCTION kb_audit_append_only();
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'kb_audit_no_truncate'
                    AND tgrelid = 'kb_audit'::regclass) THEN
                    CREATE TRIGGER kb_audit_no_truncate BEFORE TRUNCATE ON kb_audit
                        FOR EACH STATEMENT EXECUTE FUNCTION kb_audit_append_only();
                END IF;
                END $$
                """,
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    /// Run `sql` as is (tests: prove the audit table refuses changes; make a scratch database).
    package func execute(_ sql: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    /// Runs `body` in a transaction holding the advisory lock of key `name`: every change to one name (a new
    /// version, delete, recover, purge) is serialized across instances.
    ///
    /// The transaction is READ COMMITTED whatever the server's `default_transaction_isolation`: under REPEATABLE
    /// READ or SERIALIZABLE the snapshot would be taken by the lock's own `SELECT`, before the wait, so a check
    /// after the lock would not see what the previous holder committed (two inserts on one name, an owner's and
    /// an administrator's, would both pass). Each statement of a READ COMMITTED transaction sees every commit
    /// before it.
    private func lockingName<T: Sendable>(
        _ name: String,
        _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let logger = self.logger
        let lockKey = "kb:" + name
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))", logger: logger)
            return try await body(connection)
        }
    }

    /// Checks and inserts under the name's advisory lock (so concurrent inserts on one name, from any instance, are
    /// decided one after the other): a deleted name, a name an owner holds (or held), and for an owner's version any
    /// name with versions are refused; an owner's version records its name in the same transaction.
    public func insertVersion(_ version: StoredKeyVersion, created: Date) async throws -> Bool {
        let record = try Self.encode(version)
        let name = version.name
        let id = version.version
        let seconds = created.timeIntervalSince1970
        let origin = version.attributes.origin?.rawValue
        let owner = version.attributes.origin == .owner
        let logger = self.logger
        do {
            return try await insert(
                name: name,
                id: id,
                record: record,
                seconds: seconds,
                origin: origin,
                owner: owner,
                logger: logger
            )
        } catch let error as PostgresTransactionError {
            // The transaction rolled back; the refusal is the closure's.
            if let refusal = error.closureError as? KeyNameRefusal { throw refusal }
            throw error
        }
    }

    private func insert(
        name: String,
        id: String,
        record: String,
        seconds: Double,
        origin: String?,
        owner: Bool,
        logger: Logger
    ) async throws -> Bool {
        try await lockingName(name) { connection in
            var owned = false
            var deleted = false
            var taken = false
            for try await (isOwned, isDeleted, isTaken) in try await connection.query(
                """
                SELECT EXISTS (SELECT 1 FROM kb_owner_names WHERE name = \(name)),
                EXISTS (SELECT 1 FROM kb_keys WHERE name = \(name) AND deleted IS NOT NULL),
                EXISTS (SELECT 1 FROM kb_keys WHERE name = \(name))
                """,
                logger: logger
            ).decode((Bool, Bool, Bool).self) {
                (owned, deleted, taken) = (isOwned, isDeleted, isTaken)
            }
            // An owner's name first: even deleted or purged, it takes no other version.
            if owned { throw KeyNameRefusal.ownedByImporter }
            if deleted { return false }
            if owner && taken { throw KeyNameRefusal.inUse }
            try await connection.query(
                """
                INSERT INTO kb_keys (name, version, record, created, deleted, origin)
                VALUES (\(name), \(id), \(record), \(seconds), NULL, \(origin))
                """,
                logger: logger
            )
            if owner {
                try await connection.query(
                    "INSERT INTO kb_owner_names (name) VALUES (\(name)) ON CONFLICT (name) DO NOTHING",
                    logger: logger
                )
            }
            return true
        }
    }

    public func version(name: String, version: String) async throws -> StoredKeyVersion? {
        try await records(
            "SELECT record FROM kb_keys WHERE name = \(name) AND version = \(version) AND deleted IS NULL"
        ).first
    }

    public func latestVersion(name: String) async throws -> StoredKeyVersion? {
        try await records(
            "SELECT record FROM kb_keys WHERE name = \(name) AND deleted IS NULL ORDER BY seq DESC LIMIT 1"
        ).first
    }

    public func versions(name: String) async throws -> [StoredKeyVersion] {
        try await records("SELECT record FROM kb_keys WHERE name = \(name) AND deleted IS NULL ORDER BY seq")
    }

    public func latestVersions(limit: Int) async throws -> [StoredKeyVersion] {
        try await records(
            """
            SELECT record FROM kb_keys WHERE seq IN (SELECT MAX(seq) FROM kb_keys WHERE deleted IS NULL GROUP BY name)
            ORDER BY name LIMIT \(max(0, limit))
            """
        )
    }

    /// Checks and updates under the name's advisory lock, in one transaction: an owner's version (its origin column)
    /// is never replaced.
    public func replaceVersion(_ version: StoredKeyVersion) async throws -> Bool {
        let record = try Self.encode(version)
        let name = version.name
        let id = version.version
        let logger = self.logger
        do {
            return try await lockingName(name) { connection in
                var origin: String?
                var found = false
                for try await stored in try await connection.query(
                    "SELECT origin FROM kb_keys WHERE name = \(name) AND version = \(id) AND deleted IS NULL FOR UPDATE",
                    logger: logger
                ).decode(String?.self) {
                    (found, origin) = (true, stored)
                }
                guard found else { return false }
                if origin == KeyOrigin.owner.rawValue { throw KeyNameRefusal.ownedByImporter }
                var replaced = false
                for try await _ in try await connection.query(
                    """
                    UPDATE kb_keys SET record = \(record) WHERE name = \(name) AND version = \(id) AND deleted IS NULL
                    AND (origin IS NULL OR origin <> 'owner') RETURNING seq
                    """,
                    logger: logger
                ).decode(Int64.self) {
                    replaced = true
                }
                return replaced
            }
        } catch let error as PostgresTransactionError {
            // The transaction rolled back; the refusal is the closure's.
            if let refusal = error.closureError as? KeyNameRefusal { throw refusal }
            throw error
        }
    }

    public func setDeleted(name: String, at: Date?) async throws -> Bool {
        let logger = self.logger
        let seconds = at?.timeIntervalSince1970
        return try await lockingName(name) { connection in
            let rows =
                if let seconds {
                    try await connection.query(
                        "UPDATE kb_keys SET deleted = \(seconds) WHERE name = \(name) AND deleted IS NULL RETURNING seq",
                        logger: logger
                    )
                } else {
                    try await connection.query(
                        "UPDATE kb_keys SET deleted = NULL WHERE name = \(name) AND deleted IS NOT NULL RETURNING seq",
                        logger: logger
                    )
                }
            var changed = false
            for try await _ in rows.decode(Int64.self) { changed = true }
            return changed
        }
    }

    public func deletedKey(name: String) async throws -> (version: StoredKeyVersion, deleted: Date)? {
        for try await (record, deleted) in try await client.query(
            "SELECT record, deleted FROM kb_keys WHERE name = \(name) AND deleted IS NOT NULL ORDER BY seq DESC LIMIT 1",
            logger: logger
        ).decode((String, Double).self) {
            return (try Self.decode(record), Date(timeIntervalSince1970: deleted))
        }
        return nil
    }

    public func purge(name: String) async throws -> Bool {
        let logger = self.logger
        return try await lockingName(name) { connection in
            var purged = false
            for try await _ in try await connection.query(
                "DELETE FROM kb_keys WHERE name = \(name) AND deleted IS NOT NULL RETURNING seq",
                logger: logger
            ).decode(Int64.self) {
                purged = true
            }
            return purged
        }
    }

    public func appendAudit(_ entry: KeyBrokerAuditEntry) async throws {
        try await client.query(
            """
            INSERT INTO kb_audit (time, operation, key, version, result, reason, issuer, jti, claims)
            VALUES (\(entry.time), \(entry.operation), \(entry.key), \(entry.version), \(entry.result), \(entry.reason), \(entry.issuer), \(entry.jti), \(entry.claims))
            """,
            logger: logger
        )
    }

    /// Several records in their order, all or none: multi-row `INSERT`s (at most 1,000 rows each, within
    /// PostgreSQL's 65,535 parameters) in one transaction.
    public func appendAudit(batch entries: [KeyBrokerAuditEntry]) async throws {
        try await insertInOneTransaction(
            entries,
            columns: 9,
            sql: { rows in
                "INSERT INTO kb_audit (time, operation, key, version, result, reason, issuer, jti, claims) VALUES "
                    + rows
            },
            bind: { binds, entry in
                binds.append(entry.time)
                binds.append(entry.operation)
                binds.append(entry.key)
                binds.append(entry.version)
                binds.append(entry.result)
                binds.append(entry.reason)
                binds.append(entry.issuer)
                binds.append(entry.jti)
                binds.append(entry.claims)
            }
        )
    }

    public func auditEntries(limit: Int) async throws -> [KeyBrokerAuditEntry] {
        var entries: [KeyBrokerAuditEntry] = []
        for try await (id, time, operation, key, version, result, reason, issuer, jti, claims)
            in try await client.query(
                "SELECT id, time, operation, key, version, result, reason, issuer, jti, claims FROM kb_audit ORDER BY id DESC LIMIT \(max(0, limit))",
                logger: logger
            ).decode((Int64, Double, String, String?, String?, String, String, String?, String?, String?).self)
        {
            entries.append(
                KeyBrokerAuditEntry(
                    id: id,
                    time: time,
                    operation: operation,
                    key: key,
                    version: version,
                    result: result,
                    reason: reason,
                    issuer: issuer,
                    jti: jti,
                    claims: claims
                )
            )
        }
        return entries
    }

    /// One multi-row upsert (at most 1,000 rows each) in one transaction. Identifiers a conflicting row would have
    /// taken are skipped (a sequence), so pruning may keep fewer than the limit, never more.
    public func countRefusals(_ counts: [KeyBrokerRefusalCount]) async throws {
        try await insertInOneTransaction(
            counts,
            columns: 4,
            sql: { rows in
                "INSERT INTO kb_refusals (minute, key, code, count) VALUES " + rows
                    + " ON CONFLICT (minute, key, code) DO UPDATE SET count = kb_refusals.count + EXCLUDED.count"
            },
            bind: { binds, count in
                binds.append(count.minute)
                binds.append(count.key)
                binds.append(count.code)
                binds.append(count.count)
            }
        )
    }

    /// `items` as multi-row statements of at most 1,000 rows each (within PostgreSQL's 65,535 parameters), all run in
    /// one transaction: `sql` makes a statement from its rows' placeholder tuples, `bind` appends one item's
    /// `columns` values in order.
    private func insertInOneTransaction<Item>(
        _ items: [Item],
        columns: Int,
        sql: (String) -> String,
        bind: (inout PostgresBindings, Item) -> Void
    ) async throws {
        guard !items.isEmpty else { return }
        var statements: [PostgresQuery] = []
        var start = items.startIndex
        while start < items.endIndex {
            let end = min(start + 1000, items.endIndex)
            var binds = PostgresBindings(capacity: (end - start) * columns)
            var rows: [String] = []
            for (offset, item) in items[start..<end].enumerated() {
                let first = offset * columns
                rows.append("(" + (1...columns).map { "$\(first + $0)" }.joined(separator: ", ") + ")")
                bind(&binds, item)
            }
            statements.append(PostgresQuery(unsafeSQL: sql(rows.joined(separator: ", ")), binds: binds))
            start = end
        }
        let logger = self.logger
        let batch = statements
        try await client.withTransaction(logger: logger) { connection in
            for statement in batch { try await connection.query(statement, logger: logger) }
        }
    }

    public func pruneRefusals(before minute: Int64, keepingAtMost limit: Int) async throws {
        try await client.query("DELETE FROM kb_refusals WHERE minute < \(minute)", logger: logger)
        // The newest `limit` rows by id stay. Not MAX(id) - limit: an upsert that meets its row still takes a sequence
        // value, so ids have gaps, and one refusal repeated anonymously would push every other row out (review 5).
        guard limit > 0 else {
            try await client.query("DELETE FROM kb_refusals", logger: logger)
            return
        }
        let skip = Int64(limit - 1)
        try await client.query(
            "DELETE FROM kb_refusals WHERE id < (SELECT id FROM kb_refusals ORDER BY id DESC LIMIT 1 OFFSET \(skip))",
            logger: logger
        )
    }

    public func refusalCounts(limit: Int) async throws -> [KeyBrokerRefusalCount] {
        var counts: [KeyBrokerRefusalCount] = []
        for try await (minute, key, code, count) in try await client.query(
            "SELECT minute, key, code, count FROM kb_refusals ORDER BY id DESC LIMIT \(Int64(max(0, limit)))",
            logger: logger
        ).decode((Int64, String, String, Int64).self) {
            counts.append(KeyBrokerRefusalCount(minute: minute, key: key, code: code, count: count))
        }
        return counts
    }

    public func keyringID(orInsert candidate: String) async throws -> String {
        // Two instances inserting at once: the second waits on the first's row and then does nothing; both read it.
        try await client.query(
            "INSERT INTO kb_master (id, key_id) VALUES (1, \(candidate)) ON CONFLICT (id) DO NOTHING",
            logger: logger
        )
        guard let id = try await keyringID() else {
            throw ServiceError.internal("the keyring's identifier did not persist")
        }
        return id
    }

    public func keyringID() async throws -> String? {
        for try await id in try await client.query("SELECT key_id FROM kb_master WHERE id = 1", logger: logger)
            .decode(String.self)
        {
            return id
        }
        return nil
    }

    public func close() async throws { runner.cancel() }

    private func records(_ query: PostgresQuery) async throws -> [StoredKeyVersion] {
        var versions: [StoredKeyVersion] = []
        for try await record in try await client.query(query, logger: logger).decode(String.self) {
            versions.append(try Self.decode(record))
        }
        return versions
    }

    static func encode(_ version: StoredKeyVersion) throws -> String {
        try WireJSON.string(version)
    }

    static func decode(_ text: String) throws -> StoredKeyVersion {
        do {
            return try WireJSON.decode(StoredKeyVersion.self, from: Array(text.utf8))
        } catch {
            throw ServiceError.internal("a stored key record does not decode")
        }
    }
}
