internal import EnclaveCore
import Foundation
public import KeyBrokerInterface
internal import SQLiteNIO

/// The embedded ``CounterStore``: `counters.sqlite` in the data directory (0600, directory 0700), one row per
/// contract, moved by compare-and-swap.
public final class SQLiteCounterStore: CounterStore {
    private let connection: SQLiteConnection

    /// Open (creating) `directory/counters.sqlite`.
    public static func open(directory: String) async throws -> SQLiteCounterStore {
        try SecretFile.prepareDirectory(directory, what: "data directory")
        let path = directory + "/counters.sqlite"
        try SecretFile.createEmpty(path)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA busy_timeout=5000")
        _ = try await connection.query(
            "CREATE TABLE IF NOT EXISTS kb_counters (contract TEXT PRIMARY KEY, value INTEGER NOT NULL, "
                + "state TEXT NOT NULL)"
        )
        return SQLiteCounterStore(connection: connection)
    }

    private init(connection: SQLiteConnection) { self.connection = connection }

    /// Close the database.
    public func close() async throws { try await connection.close() }

    public func counter(contract: String) async throws -> BrokerCounterRecord? {
        let rows = try await connection.query(
            "SELECT value, state FROM kb_counters WHERE contract = ?",
            [.text(contract)]
        )
        guard let row = rows.first else { return nil }
        guard let value = row.column("value")?.integer, value >= 0, let state = row.column("state")?.string else {
            throw CounterStoreError.corrupt
        }
        return BrokerCounterRecord(value: UInt64(value), state: state)
    }

    public func replaceCounter(
        contract: String,
        expected: UInt64,
        with record: BrokerCounterRecord
    ) async throws -> Bool {
        guard let value = Int(exactly: record.value), let expectedValue = Int(exactly: expected) else { return false }
        let rows: [SQLiteRow]
        if expected == 0 {
            rows = try await connection.query(
                "INSERT INTO kb_counters (contract, value, state) VALUES (?, ?, ?) ON CONFLICT (contract) DO NOTHING "
                    + "RETURNING value",
                [.text(contract), .integer(value), .text(record.state)]
            )
        } else {
            rows = try await connection.query(
                "UPDATE kb_counters SET value = ?, state = ? WHERE contract = ? AND value = ? RETURNING value",
                [.integer(value), .text(record.state), .text(contract), .integer(expectedValue)]
            )
        }
        return !rows.isEmpty
    }

    /// A stored record that does not read back.
    enum CounterStoreError: Error { case corrupt }
}
