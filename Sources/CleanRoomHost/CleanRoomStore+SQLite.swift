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
                "CREATE TABLE IF NOT EXISTS cr_runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, sequence INTEGER NOT NULL, time REAL NOT NULL, suppressed INTEGER NOT NULL, result BLOB NOT NULL, receipt BLOB NOT NULL)",
            ] {
                _ = try await connection.query(statement)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteCleanRoomRecords(connection: connection)
    }

    private init(connection: SQLiteConnection) { self.connection = connection }

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
            "INSERT INTO cr_runs (id, query, sequence, time, suppressed, result, receipt) VALUES (?, ?, ?, ?, ?, ?, ?) "
                + "ON CONFLICT (id) DO NOTHING",
            [
                .text(run.id), .text(run.queryID), .integer(Int(run.sequence)), .float(run.time.timeIntervalSince1970),
                .integer(Int(run.suppressedGroups)), .blob(ByteBuffer(bytes: run.result)),
                .blob(ByteBuffer(bytes: run.receipt)),
            ]
        )
    }

    func run(_ id: String) async throws -> CleanRoomStore.RunRecord? {
        try await runs(where: "WHERE id = ?", [.text(id)]).first
    }

    func runs(limit: Int) async throws -> [CleanRoomStore.RunRecord] {
        try await runs(
            where: "WHERE sequence >= (SELECT COALESCE(MAX(sequence), 0) FROM cr_runs) - ?",
            [.integer(limit - 1)]
        )
    }

    private func runs(where clause: String, _ binds: [SQLiteData]) async throws -> [CleanRoomStore.RunRecord] {
        try await connection.query(
            "SELECT id, query, sequence, time, suppressed, result, receipt FROM cr_runs \(clause) ORDER BY sequence",
            binds
        ).compactMap { row in
            guard let id = row.column("id")?.string, let query = row.column("query")?.string,
                let sequence = row.column("sequence")?.integer, let time = row.column("time")?.double,
                let suppressed = row.column("suppressed")?.integer,
                case .blob(let result) = row.column("result"), case .blob(let receipt) = row.column("receipt")
            else { return nil }
            return CleanRoomStore.RunRecord(
                id: id,
                queryID: query,
                sequence: Int64(sequence),
                time: Date(timeIntervalSince1970: time),
                suppressedGroups: Int64(suppressed),
                result: Array(buffer: result),
                receipt: Array(buffer: receipt)
            )
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
