public import Foundation

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
            result: [UInt8],
            receipt: [UInt8]
        ) {
            self.id = id
            self.queryID = queryID
            self.sequence = sequence
            self.time = time
            self.result = result
            self.receipt = receipt
        }
    }

    /// What is shown of a stored run (the status page, `GET /status`): everything but its result and receipt, so that
    /// reading it costs the same however large the results are.
    public struct RunSummary: Hashable, Sendable {
        /// The run's ID (the receipt's digest, hex).
        public var id: String
        /// The query run.
        public var queryID: String
        /// The receipt's sequence number.
        public var sequence: Int64
        /// When it ran.
        public var time: Date

        /// Creates one from its members, each as documented on its property.
        public init(id: String, queryID: String, sequence: Int64, time: Date) {
            self.id = id
            self.queryID = queryID
            self.sequence = sequence
            self.time = time
        }

        /// The summary of `run`.
        public init(_ run: RunRecord) {
            self.init(id: run.id, queryID: run.queryID, sequence: run.sequence, time: run.time)
        }
    }

    /// Store a run.
    public func putRun(_ run: RunRecord) async throws { try await records.putRun(run) }

    /// The run with `id`, if stored.
    public func run(_ id: String) async throws -> RunRecord? { try await records.run(id) }

    /// The runs stored, oldest first (at most `limit`, the latest ones).
    public func runs(limit: Int = 1000) async throws -> [RunRecord] { try await records.runs(limit: limit) }

    /// The summaries of the runs stored, oldest first (at most `limit`, the latest ones): read without their results
    /// and receipts (an anonymous status read must not load up to `limit` results of up to a million rows each).
    public func runSummaries(limit: Int = 1000) async throws -> [RunSummary] {
        try await records.runSummaries(limit: limit)
    }
}
