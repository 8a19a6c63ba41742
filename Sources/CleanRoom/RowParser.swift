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

    private var reader = CSVReader()
    private var builder: Builder
    /// Rows that fit, so far.
    public var goodRowCount: Int { builder.goodRowCount }
    /// Rows that did not fit, so far.
    public var badRowCount: Int { builder.badRowCount }
    /// The first ``maxReported`` bad rows.
    public var badRows: [BadRow] { builder.badRows }

    /// Creates one from its members, each as documented on its property.
    public init(dataSet: Contract.DataSet) {
        builder = Builder(dataSet: dataSet)
    }

    /// Feed decrypted bytes; returns the typed rows they complete.
    ///
    /// - Throws: ``CleanRoomError/Code/badRows`` when the header does not match the contract's columns.
    public mutating func feed(_ bytes: [UInt8]) throws(CleanRoomError) -> [[SQLValue]] {
        bytes.withUnsafeBufferPointer { reader.feed($0, into: &builder) }
        return try builder.take()
    }

    /// End of the data; returns the last row, if any.
    ///
    /// - Throws: ``CleanRoomError/Code/badRows`` when there was no header at all.
    public mutating func finish() throws(CleanRoomError) -> [[SQLValue]] {
        reader.finish(into: &builder)
        let last = try builder.take()
        guard builder.sawHeader else {
            throw CleanRoomError(.badRows, "data set \(builder.dataSet.name): no header line")
        }
        return last
    }

    /// Turns the reader's records into rows in place (no copy of a field before it is typed).
    private struct Builder: CSVReader.RecordSink {
        let dataSet: Contract.DataSet
        let types: [Contract.ValueType]
        var sawHeader = false
        var goodRowCount = 0
        var badRowCount = 0
        var badRows: [BadRow] = []
        var rows: [[SQLValue]] = []
        /// A wrong header, reported by the next ``take()`` (the reader cannot throw through its sink).
        var headerError: CleanRoomError?

        init(dataSet: Contract.DataSet) {
            self.dataSet = dataSet
            self.types = dataSet.columns.map(\.type)
        }

        /// The rows built since the last call.
        mutating func take() throws(CleanRoomError) -> [[SQLValue]] {
            if let headerError { throw headerError }
            defer { rows.removeAll(keepingCapacity: true) }
            return rows
        }

        mutating func record(_ record: CSVReader.RecordView) {
            guard headerError == nil else { return }
            if !sawHeader {
                let names = (0..<record.count).map { String(decoding: record.field($0), as: UTF8.self) }
                guard record.error == nil, names == dataSet.columns.map(\.name) else {
                    headerError = CleanRoomError(
                        .badRows,
                        "data set \(dataSet.name): the header line must be exactly "
                            + dataSet.columns.map(\.name).joined(separator: ",")
                    )
                    return
                }
                sawHeader = true
                return
            }
            if let error = record.error {
                bad(record.line, "malformed CSV: \(error)")
                return
            }
            guard record.count == types.count else {
                bad(record.line, "\(record.count) fields, expected \(types.count)")
                return
            }
            var row: [SQLValue] = []
            row.reserveCapacity(types.count)
            for index in 0..<types.count {
                guard let value = Self.parse(record.field(index), quoted: record.quoted[index], as: types[index]) else {
                    let column = dataSet.columns[index]
                    bad(record.line, "column \(column.name) is not a valid \(column.type.rawValue)")
                    return
                }
                row.append(value)
            }
            goodRowCount += 1
            rows.append(row)
        }

        /// ``SQLValue/parse(_:quoted:as:)`` on the reader's bytes: the same answers, with text and integers read
        /// in place (no array or string made for an integer cell).
        static func parse(_ bytes: UnsafeBufferPointer<UInt8>, quoted: Bool, as type: Contract.ValueType) -> SQLValue? {
            if bytes.isEmpty, !quoted { return .null }
            switch type {
            case .text:
                return String(validating: bytes, as: UTF8.self).map(SQLValue.text)
            case .integer:
                return integer(bytes).map(SQLValue.integer)
            case .real, .date:
                return SQLValue.parse(Array(bytes), quoted: quoted, as: type)
            }
        }

        /// What `Int64(String)` answers for text of at most 20 bytes of digits and `-`: an optional leading `-`,
        /// then at least one digit, in range; nil otherwise.
        static func integer(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
            guard bytes.count <= 20, !bytes.isEmpty else { return nil }
            let negative = bytes[0] == UInt8(ascii: "-")
            let digits = negative ? 1 : 0
            guard digits < bytes.count else { return nil }
            // Accumulate negatively: Int64.min has no positive counterpart.
            var value: Int64 = 0
            for index in digits..<bytes.count {
                let digit = bytes[index] &- 0x30
                guard digit < 10 else { return nil }
                let (times, overflow) = value.multipliedReportingOverflow(by: 10)
                let (next, underflow) = times.subtractingReportingOverflow(Int64(digit))
                guard !overflow, !underflow else { return nil }
                value = next
            }
            if negative { return value }
            return value == .min ? nil : -value
        }

        mutating func bad(_ line: Int, _ reason: String) {
            badRowCount += 1
            if badRows.count < maxReported { badRows.append(BadRow(line: line, reason: reason)) }
        }
    }
}
