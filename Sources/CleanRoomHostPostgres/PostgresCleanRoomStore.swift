internal import AttestationServicePostgres
public import CleanRoomHost
internal import Foundation
internal import Logging
internal import NIOCore
internal import PostgresNIO

/// The clean room host's records in PostgreSQL (`enclave cleanroom serve --database postgres://…`): the contract,
/// the parties' signatures and halt statements, the data sets' records and the runs. The files (encrypted data sets,
/// their owners' upload signatures, the sealed durable state) stay in the data directory.
public enum PostgresCleanRoomStore {
    /// Open a store whose records are in the PostgreSQL database at `url`
    /// (`postgres://user@host[:port]/database[?sslmode=…&sslrootcert=FILE|system]`, TLS as the attestation
    /// service's `--database`: libpq's `sslmode`, `verify-full` the only mode that stops an attacker on the path and
    /// the default toward any host that is not loopback) and whose files are in `directory`; the tables are created
    /// when missing. `password`, when given, takes precedence over one in the URL. Fails (rather than waiting) when
    /// the server can't be reached, refuses the TLS `sslmode` requires, presents a certificate that does not
    /// verify, or refuses the credentials.
    ///
    /// - Parameters:
    ///   - directory: The data directory: encrypted data sets, their upload signatures, the sealed state.
    ///   - url: The database; without `sslmode`, `verify-full` unless the host is this machine's loopback.
    ///   - password: The password, taken over one in the URL.
    ///   - allowUnverifiedTLS: Accept `sslmode` `disable`, `allow`, `prefer` or `require` toward a host that is not
    ///     loopback (refused otherwise, `InsecureDatabaseConnection`): anyone on the path could then pose as the
    ///     database and, below `require`, read the password.
    public static func open(
        directory: String,
        url: String,
        password: String? = nil,
        allowUnverifiedTLS: Bool = false
    ) async throws -> CleanRoomStore {
        let records = try await PostgresCleanRoomRecords.connect(
            url: url,
            password: password,
            allowUnverifiedTLS: allowUnverifiedTLS
        )
        do {
            return try CleanRoomStore.open(directory: directory, records: records)
        } catch {
            try? await records.close()
            throw error
        }
    }

    /// Run `sql` as is on the database at `url` (tests: make a scratch database).
    package static func execute(_ sql: String, url: String, password: String? = nil) async throws {
        let records = try await PostgresCleanRoomRecords.connect(url: url, password: password, migrate: false)
        defer { records.runner.cancel() }
        try await records.client.query(PostgresQuery(unsafeSQL: sql), logger: records.logger)
    }
}

/// The records on one PostgreSQL database, with the same semantics as the SQLite backend.
final class PostgresCleanRoomRecords: CleanRoomRecords {
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger = Logger(label: "enclavekit.cleanroom.postgres")

    /// The advisory lock (transaction-scoped) that serializes migrations across instances starting at once.
    static let migrationLock: Int64 = 0x6372_0001

    static func connect(
        url: String,
        password: String?,
        allowUnverifiedTLS: Bool = false,
        migrate: Bool = true
    ) async throws
        -> PostgresCleanRoomRecords
    {
        let client = try await PostgresServiceStore.makeClient(
            url: url,
            password: password,
            allowUnverifiedTLS: allowUnverifiedTLS
        )
        let records = PostgresCleanRoomRecords(client: client, runner: Task { await client.run() })
        guard migrate else { return records }
        do {
            try await records.migrate()
        } catch {
            records.runner.cancel()
            throw error
        }
        return records
    }

    private init(client: PostgresClient, runner: Task<Void, Never>) {
        self.client = client
        self.runner = runner
    }

    private func migrate() async throws {
        let logger = self.logger
        try await client.withTransaction(logger: logger) { connection in
            // READ COMMITTED whatever the server's default: under REPEATABLE READ the lock's SELECT would take the
            // snapshot before the wait, and what the previous holder created would stay unseen.
            try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            for statement in [
                "CREATE TABLE IF NOT EXISTS cr_contract (id INTEGER PRIMARY KEY CHECK (id = 1), contract_id TEXT NOT NULL, bytes BYTEA NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_signatures (party TEXT PRIMARY KEY, bytes BYTEA NOT NULL, received DOUBLE PRECISION NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_halts (party TEXT PRIMARY KEY, bytes BYTEA NOT NULL, received DOUBLE PRECISION NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_datasets (name TEXT PRIMARY KEY, path TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL, uploaded DOUBLE PRECISION NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, sequence BIGINT NOT NULL, time DOUBLE PRECISION NOT NULL, result BYTEA NOT NULL, receipt BYTEA NOT NULL)",
                // A database made before receipt format v2 holds each run's count of suppressed groups (NOT NULL,
                // no default), a count that can depend on groups below the minimum: dropped, so new rows need none
                // and the database stays usable; the runs stay. (Looked up first: the ALTER TABLE's exclusive lock
                // is taken only once.)
                """
                DO $$ BEGIN IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
                AND table_name = 'cr_runs' AND column_name = 'suppressed') THEN \
                ALTER TABLE cr_runs DROP COLUMN suppressed; END IF; END $$
                """,
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    func close() async throws { runner.cancel() }

    func contract() async throws -> [UInt8]? {
        for try await bytes in try await client.query("SELECT bytes FROM cr_contract WHERE id = 1", logger: logger)
            .decode(ByteBuffer.self)
        {
            return Array(buffer: bytes)
        }
        return nil
    }

    func setContract(_ bytes: [UInt8], id: String) async throws -> Bool {
        let buffer = ByteBuffer(bytes: bytes)
        var inserted = false
        for try await _ in try await client.query(
            "INSERT INTO cr_contract (id, contract_id, bytes) VALUES (1, \(id), \(buffer)) ON CONFLICT (id) DO NOTHING RETURNING id",
            logger: logger
        ).decode(Int32.self) {
            inserted = true
        }
        return inserted
    }

    func documents(_ kind: CleanRoomStore.PartyDocument) async throws -> [[UInt8]] {
        let query: PostgresQuery =
            switch kind {
            case .signature: "SELECT bytes FROM cr_signatures ORDER BY party"
            case .halt: "SELECT bytes FROM cr_halts ORDER BY party"
            }
        var documents: [[UInt8]] = []
        for try await bytes in try await client.query(query, logger: logger).decode(ByteBuffer.self) {
            documents.append(Array(buffer: bytes))
        }
        return documents
    }

    func putDocument(
        _ kind: CleanRoomStore.PartyDocument,
        party: String,
        _ bytes: [UInt8],
        received: Date
    )
        async throws
    {
        let buffer = ByteBuffer(bytes: bytes)
        let time = received.timeIntervalSince1970
        let query: PostgresQuery =
            switch kind {
            case .signature:
                "INSERT INTO cr_signatures (party, bytes, received) VALUES (\(party), \(buffer), \(time)) ON CONFLICT (party) DO UPDATE SET bytes = excluded.bytes, received = excluded.received"
            case .halt:
                "INSERT INTO cr_halts (party, bytes, received) VALUES (\(party), \(buffer), \(time)) ON CONFLICT (party) DO UPDATE SET bytes = excluded.bytes, received = excluded.received"
            }
        try await client.query(query, logger: logger)
    }

    func putDataSet(_ record: CleanRoomStore.DataSetRecord) async throws {
        let uploaded = record.uploaded.timeIntervalSince1970
        try await client.query(
            """
            INSERT INTO cr_datasets (name, path, size, sha256, uploaded) \
            VALUES (\(record.name), \(record.path), \(record.size), \(record.sha256), \(uploaded)) \
            ON CONFLICT (name) DO UPDATE SET path = excluded.path, size = excluded.size, sha256 = excluded.sha256, \
            uploaded = excluded.uploaded
            """,
            logger: logger
        )
    }

    func dataSets() async throws -> [CleanRoomStore.DataSetRecord] {
        var records: [CleanRoomStore.DataSetRecord] = []
        for try await (name, path, size, sha256, uploaded) in try await client.query(
            "SELECT name, path, size, sha256, uploaded FROM cr_datasets ORDER BY name",
            logger: logger
        ).decode((String, String, Int64, String, Double).self) {
            records.append(
                .init(
                    name: name,
                    path: path,
                    size: size,
                    sha256: sha256,
                    uploaded: Date(timeIntervalSince1970: uploaded)
                )
            )
        }
        return records
    }

    func putRun(_ run: CleanRoomStore.RunRecord) async throws {
        let time = run.time.timeIntervalSince1970
        let result = ByteBuffer(bytes: run.result)
        let receipt = ByteBuffer(bytes: run.receipt)
        try await client.query(
            """
            INSERT INTO cr_runs (id, query, sequence, time, result, receipt) \
            VALUES (\(run.id), \(run.queryID), \(run.sequence), \(time), \(result), \(receipt)) \
            ON CONFLICT (id) DO NOTHING
            """,
            logger: logger
        )
    }

    func run(_ id: String) async throws -> CleanRoomStore.RunRecord? {
        try await runs(
            "SELECT id, query, sequence, time, result, receipt FROM cr_runs WHERE id = \(id)"
        ).first
    }

    func runs(limit: Int) async throws -> [CleanRoomStore.RunRecord] {
        let back = Int64(limit) - 1
        return try await runs(
            """
            SELECT id, query, sequence, time, result, receipt FROM cr_runs \
            WHERE sequence >= (SELECT COALESCE(MAX(sequence), 0) FROM cr_runs) - \(back) ORDER BY sequence
            """
        )
    }

    func runSummaries(limit: Int) async throws -> [CleanRoomStore.RunSummary] {
        let back = Int64(limit) - 1
        var summaries: [CleanRoomStore.RunSummary] = []
        for try await (id, queryID, sequence, time) in try await client.query(
            """
            SELECT id, query, sequence, time FROM cr_runs \
            WHERE sequence >= (SELECT COALESCE(MAX(sequence), 0) FROM cr_runs) - \(back) ORDER BY sequence
            """,
            logger: logger
        ).decode((String, String, Int64, Double).self) {
            summaries.append(
                .init(id: id, queryID: queryID, sequence: sequence, time: Date(timeIntervalSince1970: time))
            )
        }
        return summaries
    }

    private func runs(_ query: PostgresQuery) async throws -> [CleanRoomStore.RunRecord] {
        var runs: [CleanRoomStore.RunRecord] = []
        for try await (id, queryID, sequence, time, result, receipt) in try await client.query(
            query,
            logger: logger
        ).decode((String, String, Int64, Double, ByteBuffer, ByteBuffer).self) {
            runs.append(
                .init(
                    id: id,
                    queryID: queryID,
                    sequence: sequence,
                    time: Date(timeIntervalSince1970: time),
                    result: Array(buffer: result),
                    receipt: Array(buffer: receipt)
                )
            )
        }
        return runs
    }
}
