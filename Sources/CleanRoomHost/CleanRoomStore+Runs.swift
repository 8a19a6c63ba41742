public import Foundation
internal import NIOCore
internal import SQLiteNIO

/// The query runs the host stores: each run's encrypted result and its receipt (both safe to keep on an untrusted
/// host: the result is ciphertext to the recipients, the receipt holds digests and counts only).
extension CleanRoomStore {
    /// A stored run.
    public struct RunRecord: Hashable, Sendable {
        /// The run's ID (the receipt's digest, hex).
        public var id: String
        /// The query run.
        public var queryID: String
        /// The receipt's sequence number.
        public var sequence: Int64
        /// When it ran.
        public var time: Date
        /// Groups suppressed.
        public var suppressedGroups: Int64
        /// The encrypted result document.
        public var result: [UInt8]
        /// The receipt document.
        public var receipt: [UInt8]

        /// Creates one from its members, each as documented on its property.
        public init(
            id: String,
            queryID: String,
            sequence: Int64,
            time: Date,
            suppressedGroups: Int64,
            result: [UInt8],
            receipt: [UInt8]
        ) {
            self.id = id
            self.queryID = queryID
            self.sequence = sequence
            self.time = time
            self.suppressedGroups = suppressedGroups
            self.result = result
            self.receipt = receipt
        }
    }

    static let runsTable =
        "CREATE TABLE IF NOT EXISTS cr_runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, sequence INTEGER NOT NULL, "
        + "time REAL NOT NULL, suppressed INTEGER NOT NULL, result BLOB NOT NULL, receipt BLOB NOT NULL)"

    /// Store a run.
    public func putRun(_ run: RunRecord) async throws {
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

    /// The run with `id`, if stored.
    public func run(_ id: String) async throws -> RunRecord? {
        try await runs(where: "WHERE id = ?", [.text(id)]).first
    }

    /// The runs stored, oldest first (at most `limit`, the latest ones).
    public func runs(limit: Int = 1000) async throws -> [RunRecord] {
        try await runs(
            where: "WHERE sequence >= (SELECT COALESCE(MAX(sequence), 0) FROM cr_runs) - ?",
            [.integer(limit - 1)]
        )
    }

    private func runs(where clause: String, _ binds: [SQLiteData]) async throws -> [RunRecord] {
        try await connection.query(
            "SELECT id, query, sequence, time, suppressed, result, receipt FROM cr_runs \(clause) ORDER BY sequence",
            binds
        ).compactMap { row in
            guard let id = row.column("id")?.string, let query = row.column("query")?.string,
                let sequence = row.column("sequence")?.integer, let time = row.column("time")?.double,
                let suppressed = row.column("suppressed")?.integer,
                case .blob(let result) = row.column("result"), case .blob(let receipt) = row.column("receipt")
            else { return nil }
            return RunRecord(
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
