internal import EnclaveCore
internal import Foundation
internal import NIOCore
internal import SQLiteNIO

/// The clean room host's records in SQLite (`cleanroom.sqlite` in the data directory, 0600): the default backend.
final class SQLiteCleanRoomRecords: CleanRoomRecords {
    private let connection: SQLiteConnection

    /// Open (creating, 0600) the database at `path` and its tables.
    static func open(path: String) async throws -> SQLiteCleanRoomRecords {
        try SecretFile.createEmpty(path)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        do {
            _ = try await connection.query("PRAGMA journal_mode=WAL")
            _ = try await connection.query("PRAGMA busy_timeout=5000")
            for statement in [
                "CREATE TABLE IF NOT EXISTS cr_contract (id INTEGER PRIMARY KEY CHECK (id = 1), contract_id TEXT NOT NULL, bytes BLOB NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_signatures (party TEXT PRIMARY KEY, bytes BLOB NOT NULL, received REAL NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_halts (party TEXT PRIMARY KEY, bytes BLOB NOT NULL, received REAL NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_datasets (name TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, uploaded REAL NOT NULL)",
                "CREATE TABLE IF NOT EXISTS cr_runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, sequence INTEGER NOT NULL, time REAL NOT NULL, result BLOB NOT NULL, receipt BLOB NOT NULL)",
            ] {
                _ = try await connection.query(statement)
            }
            try await dropSuppressedColumn(connection)
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteCleanRoomRecords(connection: connection)
    }

    private init(connection: SQLiteConnection) { self.connection = connection }

    /// A database made before receipt format v2 has `cr_runs.suppressed` (NOT NULL, no default), the count of
    /// suppressed groups of each run: a count that can depend on groups below the minimum. The column is dropped
    /// (the stored counts with it), so new rows need none and the database stays openable; the runs stay.
    private static func dropSuppressedColumn(_ connection: SQLiteConnection) async throws {
        let columns = try await connection.query("PRAGMA table_info(cr_runs)").compactMap { $0.column("name")?.string }
        guard columns.contains("suppressed") else { return }
        _ = try await connection.query("ALTER TABLE cr_runs DROP COLUMN suppressed")
    }

    func close() async throws { try await connection.close() }

    func contract() async throws -> [UInt8]? {
        let rows = try await connection.query("SELECT bytes FROM cr_contract WHERE id = 1")
        return rows.first?.column("bytes")?.bytes
    }

    func setContract(_ bytes: [UInt8], id: String) async throws -> Bool {
        let rows = try await connection.query(
            "INSERT INTO cr_contract (id, contract_id, bytes) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
            [.text(id), .blob(ByteBuffer(bytes: bytes))]
        )
        return !rows.isEmpty
    }

    private static func table(_ kind: CleanRoomStore.PartyDocument) -> String {
        switch kind {
        case .signature: "cr_signatures"
        case .halt: "cr_halts"
        }
    }

    func documents(_ kind: CleanRoomStore.PartyDocument) async throws -> [[UInt8]] {
        try await connection.query("SELECT bytes FROM \(Self.table(kind)) ORDER BY party").compactMap {
            $0.column("bytes")?.bytes
        }
    }

    func putDocument(
        _ kind: CleanRoomStore.PartyDocument,
        party: String,
        _ bytes: [UInt8],
        received: Date
    )
        async throws
    {
        _ = try await connection.query(
            "INSERT INTO \(Self.table(kind)) (party, bytes, received) VALUES (?, ?, ?) "
                + "ON CONFLICT (party) DO UPDATE SET bytes = excluded.bytes, received = excluded.received",
            [.text(party), .blob(ByteBuffer(bytes: bytes)), .float(received.timeIntervalSince1970)]
        )
    }

    func putDataSet(_ record: CleanRoomStore.DataSetRecord) async throws {
        _ = try await connection.query(
            "INSERT INTO cr_datasets (name, path, size, sha256, uploaded) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) "
                + "DO UPDATE SET path = excluded.path, size = excluded.size, sha256 = excluded.sha256, "
                + "uploaded = excluded.uploaded",
            [
                .text(record.name), .text(record.path), .integer(Int(record.size)), .text(record.sha256),
                .float(record.uploaded.timeIntervalSince1970),
            ]
        )
    }

    func dataSets() async throws -> [CleanRoomStore.DataSetRecord] {
        try await connection.query("SELECT name, path, size, sha256, uploaded FROM cr_datasets ORDER BY name")
            .compactMap { row in
                guard let name = row.column("name")?.string, let path = row.column("path")?.string,
                    let size = row.column("size")?.integer, let sha256 = row.column("sha256")?.string,
                    let uploaded = row.column("uploaded")?.double
                else { return nil }
                return CleanRoomStore.DataSetRecord(
                    name: name,
                    path: path,
                    size: Int64(size),
                    sha256: sha256,
                    uploaded: Date(timeIntervalSince1970: uploaded)
                )
            }
    }

    func putRun(_ run: CleanRoomStore.RunRecord) async throws {
        _ = try await connection.query(
            "INSERT INTO cr_runs (id, query, sequence, time, result, receipt) VALUES (?, ?, ?, ?, ?, ?) "
                + "ON CONFLICT (id) DO NOTHING",
            [
                .text(run.id), .text(run.queryID), .integer(Int(run.sequence)), .float(run.time.timeIntervalSince1970),
                .blob(ByteBuffer(bytes: run.result)), .blob(ByteBuffer(bytes: run.receipt)),
            ]
        )
    }

    func run(_ id: String) async throws -> CleanRoomStore.RunRecord? {
        try await runs(where: "WHERE id = ?", [.text(id)]).first
    }

    func runs(limit: Int) async throws -> [CleanRoomStore.RunRecord] {
        try await runs(where: Self.latest, [.integer(limit - 1)])
    }

    /// The runs whose sequence is within the bound number of the latest.
    private static let latest = "WHERE sequence >= (SELECT COALESCE(MAX(sequence), 0) FROM cr_runs) - ?"

    func runSummaries(limit: Int) async throws -> [CleanRoomStore.RunSummary] {
        try await connection.query(
            "SELECT id, query, sequence, time FROM cr_runs \(Self.latest) ORDER BY sequence",
            [.integer(limit - 1)]
        ).compactMap { row in
            guard let id = row.column("id")?.string, let query = row.column("query")?.string,
                let sequence = row.column("sequence")?.integer, let time = row.column("time")?.double
            else { return nil }
            return CleanRoomStore.RunSummary(
                id: id,
                queryID: query,
                sequence: Int64(sequence),
                time: Date(timeIntervalSince1970: time)
            )
        }
    }

    private func runs(where clause: String, _ binds: [SQLiteData]) async throws -> [CleanRoomStore.RunRecord] {
        try await connection.query(
            "SELECT id, query, sequence, time, result, receipt FROM cr_runs \(clause) ORDER BY sequence",
            binds
        ).compactMap { row in
            guard let id = row.column("id")?.string, let query = row.column("query")?.string,
                let sequence = row.column("sequence")?.integer, let time = row.column("time")?.double,
                case .blob(let result) = row.column("result"), case .blob(let receipt) = row.column("receipt")
            else { return nil }
            return CleanRoomStore.RunRecord(
                id: id,
                queryID: query,
                sequence: Int64(sequence),
                time: Date(timeIntervalSince1970: time),
                result: Array(buffer: result),
                receipt: Array(buffer: receipt)
            )
        }
    }
}

extension CleanRoomStore {
    /// Run `sql` as is on the SQLite database at `path` and answer its rows, each column as text (tests: make a
    /// database as an older build left it, read what a table holds).
    package static func executeSQLite(_ sql: String, path: String) async throws -> [[String: String]] {
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        do {
            let rows = try await connection.query(sql).map { row in
                Dictionary(
                    row.columns.map { column in
                        if case .text(let text) = column.data { return (column.name, text) }
                        return (column.name, column.data.description)
                    },
                    uniquingKeysWith: { first, _ in first }
                )
            }
            try await connection.close()
            return rows
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

extension SQLiteData {
    /// A blob's bytes.
    fileprivate var bytes: [UInt8]? {
        guard case .blob(let buffer) = self else { return nil }
        return Array(buffer: buffer)
    }
}
