package import Foundation

extension CleanRoomStore {
    /// Which of a party's documents a record is: its signature of the contract or its halt statement.
    package enum PartyDocument: Sendable {
        /// A signature document (`POST /signatures`).
        case signature
        /// A halt statement (`POST /halts`).
        case halt
    }
}

/// Where the clean room host keeps its records (contract, signatures, halts, data set records, runs): SQLite in the
/// data directory by default, PostgreSQL optionally (`CleanRoomHostPostgres`). Files (data sets, their upload
/// signatures, the sealed state) stay in the data directory whatever the backend.
package protocol CleanRoomRecords: Sendable {
    /// The stored contract's canonical bytes, if any.
    func contract() async throws -> [UInt8]?
    /// Store the contract; false when one is stored already.
    func setContract(_ bytes: [UInt8], id: String) async throws -> Bool
    /// The stored documents of `kind`, ordered by party name.
    func documents(_ kind: CleanRoomStore.PartyDocument) async throws -> [[UInt8]]
    /// Store `party`'s document of `kind` (a later one replaces it), received at `received`.
    func putDocument(
        _ kind: CleanRoomStore.PartyDocument,
        party: String,
        _ bytes: [UInt8],
        received: Date
    )
        async throws
    /// Record a data set (a later record of the same name replaces it).
    func putDataSet(_ record: CleanRoomStore.DataSetRecord) async throws
    /// The data sets recorded, by name.
    func dataSets() async throws -> [CleanRoomStore.DataSetRecord]
    /// Store a run (a run with a stored ID is kept as it is).
    func putRun(_ run: CleanRoomStore.RunRecord) async throws
    /// The run with `id`, if stored.
    func run(_ id: String) async throws -> CleanRoomStore.RunRecord?
    /// The runs stored, oldest first: those whose sequence is within `limit` of the latest.
    func runs(limit: Int) async throws -> [CleanRoomStore.RunRecord]
    /// The same runs as `runs(limit:)` without their results and receipts (never reads those columns).
    func runSummaries(limit: Int) async throws -> [CleanRoomStore.RunSummary]
    /// Close the connection.
    func close() async throws
}
