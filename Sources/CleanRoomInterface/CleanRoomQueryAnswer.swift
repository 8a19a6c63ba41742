/// What ``CleanRoomRunQuery`` answers: the encrypted result and the signed receipt of the run.
///
/// It says nothing of the groups below the minimum (not even how many there were): with a parameter, that count
/// could depend on one record, and the host (and every reader of its status page) sees the answer.
public struct CleanRoomQueryAnswer: Codable, Hashable, Sendable {
    /// The run's ID: the receipt's digest (SHA-256 of its canonical document), lower-case hex.
    public var id: String
    /// The query run.
    public var queryID: String
    /// The result: a `ResultEnvelope` canonical document (HPKE copies for every contract recipient) whose
    /// plaintext is ``CleanRoomResultTable`` as JSON.
    public var result: [UInt8]
    /// The receipt: a `Receipt` canonical document, signed by the enclave's attested key and chained.
    public var receipt: [UInt8]
    /// When the run finished, seconds since 1970.
    public var time: Int64

    /// Creates one from its members, each as documented on its property.
    public init(
        id: String,
        queryID: String,
        result: [UInt8],
        receipt: [UInt8],
        time: Int64
    ) {
        self.id = id
        self.queryID = queryID
        self.result = result
        self.receipt = receipt
        self.time = time
    }
}

/// A released result table (the plaintext of a result copy): column names and rows of `type:value` texts.
public struct CleanRoomResultTable: Codable, Hashable, Sendable {
    /// The output columns.
    public var columns: [String]
    /// The rows released (suppressed groups are absent).
    public var rows: [[String]]

    /// Creates one from its members, each as documented on its property.
    public init(columns: [String], rows: [[String]]) {
        self.columns = columns
        self.rows = rows
    }
}
