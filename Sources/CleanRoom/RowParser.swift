/// Turns a data set's decrypted CSV into typed rows by the contract's schema, and counts what does not fit.
///
/// The first record must be the header: exactly the contract's column names, in order. Every later record becomes
/// a row of ``SQLValue``s or a ``BadRow`` with its line number and reason (wrong column count, a cell that is not
/// its column's type, malformed CSV). Bad rows are never loaded and never silently lost: ``badRowCount`` counts
/// them all and ``badRows`` keeps the first ``maxReported`` for the report.
public struct RowParser: Sendable {
    /// A record that did not fit.
    public struct BadRow: Hashable, Sendable, CustomStringConvertible {
        /// The line it started on.
        public var line: Int
        /// Why (never the cell's value: the data is confidential).
        public var reason: String

        public var description: String { "line \(line): \(reason)" }
    }

    /// How many bad rows are kept with their reasons.
    public static let maxReported = 100

    private let dataSet: Contract.DataSet
    private var reader = CSVReader()
    private var sawHeader = false
    /// Rows that fit, so far.
    public private(set) var goodRowCount = 0
    /// Rows that did not fit, so far.
    public private(set) var badRowCount = 0
    /// The first ``maxReported`` bad rows.
    public private(set) var badRows: [BadRow] = []

    /// Creates one from its members, each as documented on its property.
    public init(dataSet: Contract.DataSet) {
        self.dataSet = dataSet
    }

    /// Feed decrypted bytes; returns the typed rows they complete.
    ///
    /// - Throws: ``CleanRoomError/Code/badRows`` when the header does not match the contract's columns.
    public mutating func feed(_ bytes: [UInt8]) throws(CleanRoomError) -> [[SQLValue]] {
        try rows(reader.feed(bytes))
    }

    /// End of the data; returns the last row, if any.
    ///
    /// - Throws: ``CleanRoomError/Code/badRows`` when there was no header at all.
    public mutating func finish() throws(CleanRoomError) -> [[SQLValue]] {
        let last = try rows(reader.finish())
        guard sawHeader else { throw CleanRoomError(.badRows, "data set \(dataSet.name): no header line") }
        return last
    }

    private mutating func rows(_ records: [CSVReader.Record]) throws(CleanRoomError) -> [[SQLValue]] {
        var out: [[SQLValue]] = []
        out.reserveCapacity(records.count)
        for record in records {
            if !sawHeader {
                let names = record.fields.map { String(decoding: $0, as: UTF8.self) }
                guard record.error == nil, names == dataSet.columns.map(\.name) else {
                    throw CleanRoomError(
                        .badRows,
                        "data set \(dataSet.name): the header line must be exactly "
                            + dataSet.columns.map(\.name).joined(separator: ",")
                    )
                }
                sawHeader = true
                continue
            }
            if let error = record.error {
                bad(record.line, "malformed CSV: \(error)")
                continue
            }
            guard record.fields.count == dataSet.columns.count else {
                bad(record.line, "\(record.fields.count) fields, expected \(dataSet.columns.count)")
                continue
            }
            var row: [SQLValue] = []
            row.reserveCapacity(record.fields.count)
            var failed = false
            for (index, column) in dataSet.columns.enumerated() {
                guard let value = SQLValue.parse(record.fields[index], quoted: record.quoted[index], as: column.type)
                else {
                    bad(record.line, "column \(column.name) is not a valid \(column.type.rawValue)")
                    failed = true
                    break
                }
                row.append(value)
            }
            if !failed {
                goodRowCount += 1
                out.append(row)
            }
        }
        return out
    }

    private mutating func bad(_ line: Int, _ reason: String) {
        badRowCount += 1
        if badRows.count < Self.maxReported { badRows.append(BadRow(line: line, reason: reason)) }
    }
}
