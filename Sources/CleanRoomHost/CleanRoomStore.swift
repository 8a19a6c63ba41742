internal import EnclaveCore
public import Foundation
internal import NIOCore
internal import SQLiteNIO

/// The clean room host's embedded store: `cleanroom.sqlite` in the data directory (0600, directory 0700) for the
/// contract, the parties' signatures and halt statements and the data sets' records; the encrypted data sets
/// themselves are files under `datasets/` (ciphertext as uploaded, never decrypted on the host).
///
/// Nothing in it is secret: the contract and its signatures are public to the parties, data sets are ciphertext.
public final class CleanRoomStore: Sendable {
    /// An encrypted data set as stored.
    public struct DataSetRecord: Hashable, Sendable {
        /// The data set (table) name of the contract.
        public var name: String
        /// The file holding the ciphertext.
        public var path: String
        /// Its size in bytes.
        public var size: Int64
        /// SHA-256 of the ciphertext, lower-case hex.
        public var sha256: String
        /// When it was uploaded.
        public var uploaded: Date
    }

    let connection: SQLiteConnection
    /// The data directory.
    public let directory: String

    /// Open (creating) `directory/cleanroom.sqlite` and `directory/datasets`.
    public static func open(directory: String) async throws -> CleanRoomStore {
        try SecretFile.prepareDirectory(directory, what: "data directory")
        try SecretFile.prepareDirectory(directory + "/datasets", what: "data set directory")
        let path = directory + "/cleanroom.sqlite"
        try SecretFile.createEmpty(path)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA busy_timeout=5000")
        let store = CleanRoomStore(connection: connection, directory: directory)
        for statement in [
            "CREATE TABLE IF NOT EXISTS cr_contract (id INTEGER PRIMARY KEY CHECK (id = 1), contract_id TEXT NOT NULL, bytes BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS cr_signatures (party TEXT PRIMARY KEY, bytes BLOB NOT NULL, received REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS cr_halts (party TEXT PRIMARY KEY, bytes BLOB NOT NULL, received REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS cr_datasets (name TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, uploaded REAL NOT NULL)",
            CleanRoomStore.runsTable,
        ] {
            _ = try await connection.query(statement)
        }
        return store
    }

    private init(connection: SQLiteConnection, directory: String) {
        self.connection = connection
        self.directory = directory
    }

    /// Close the database.
    public func close() async throws { try await connection.close() }

    /// The stored contract's canonical bytes, if any.
    public func contract() async throws -> [UInt8]? {
        let rows = try await connection.query("SELECT bytes FROM cr_contract WHERE id = 1")
        return rows.first?.column("bytes")?.bytes
    }

    /// Store the contract; false when one is stored already (a host serves one contract).
    public func setContract(_ bytes: [UInt8], id: String) async throws -> Bool {
        let rows = try await connection.query(
            "INSERT INTO cr_contract (id, contract_id, bytes) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
            [.text(id), .blob(ByteBuffer(bytes: bytes))]
        )
        return !rows.isEmpty
    }

    /// The stored signature documents, by party name.
    public func signatures() async throws -> [[UInt8]] { try await documents("cr_signatures") }

    /// The stored halt statements.
    public func halts() async throws -> [[UInt8]] { try await documents("cr_halts") }

    /// Store `party`'s signature document (a later one replaces it).
    public func putSignature(party: String, _ bytes: [UInt8]) async throws {
        try await put("cr_signatures", party, bytes)
    }

    /// Store `party`'s halt statement (a later one replaces it).
    public func putHalt(party: String, _ bytes: [UInt8]) async throws { try await put("cr_halts", party, bytes) }

    private func documents(_ table: String) async throws -> [[UInt8]] {
        try await connection.query("SELECT bytes FROM \(table) ORDER BY party").compactMap {
            $0.column("bytes")?.bytes
        }
    }

    private func put(_ table: String, _ party: String, _ bytes: [UInt8]) async throws {
        _ = try await connection.query(
            "INSERT INTO \(table) (party, bytes, received) VALUES (?, ?, ?) "
                + "ON CONFLICT (party) DO UPDATE SET bytes = excluded.bytes, received = excluded.received",
            [.text(party), .blob(ByteBuffer(bytes: bytes)), .float(Date().timeIntervalSince1970)]
        )
    }

    /// The path a data set's ciphertext is stored at.
    public func dataSetPath(_ name: String) -> String { directory + "/datasets/" + name + ".ecr" }

    /// Where the owner's upload signature of data set `name` is kept (beside ``dataSetPath(_:)``).
    public func dataSetSignaturePath(_ name: String) -> String { directory + "/datasets/" + name + ".sig" }

    /// Record a data set whose ciphertext is now at ``dataSetPath(_:)``.
    public func putDataSet(_ record: DataSetRecord) async throws {
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

    /// The data sets stored, by name.
    public func dataSets() async throws -> [DataSetRecord] {
        try await connection.query("SELECT name, path, size, sha256, uploaded FROM cr_datasets ORDER BY name")
            .compactMap {
                row in
                guard let name = row.column("name")?.string, let path = row.column("path")?.string,
                    let size = row.column("size")?.integer, let sha256 = row.column("sha256")?.string,
                    let uploaded = row.column("uploaded")?.double
                else { return nil }
                return DataSetRecord(
                    name: name,
                    path: path,
                    size: Int64(size),
                    sha256: sha256,
                    uploaded: Date(timeIntervalSince1970: uploaded)
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
