import CleanRoom
import TestSupport
import Testing

/// The CSV reader and row parser were rewritten to read records in place (no array per field, integers parsed
/// without a string); these tests hold them to the previous implementation's answers, kept here verbatim as
/// ``ReferenceCSVReader``, on random inputs fed in random pieces.
@Suite("CSV reader equivalence")
struct CSVReaderEquivalenceTests {
    /// A deterministic generator (SplitMix64).
    typealias Generator = SplitMix64

    /// Random bytes over an alphabet heavy in CSV's special characters, digits and signs.
    static func input(_ random: inout Generator, length: Int) -> [UInt8] {
        let alphabet = Array("ab,,,\"\"\n\n\r-+09.e ".utf8) + [0xC3, 0xA9, 0xFF]
        return (0..<length).map { _ in alphabet[random.below(alphabet.count)] }
    }

    /// `bytes` cut into random pieces.
    static func pieces(_ bytes: [UInt8], _ random: inout Generator) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 1 + random.below(40))
            out.append(Array(bytes[offset..<end]))
            offset = end
        }
        return out
    }

    static func plain(_ records: [CSVReader.Record]) -> [ReferenceCSVReader.Record] {
        records.map { .init(line: $0.line, fields: $0.fields, quoted: $0.quoted, error: $0.error) }
    }

    @Test func recordsMatchThePreviousReaderOnRandomInput() {
        var random = Generator(state: 13)
        for _ in 0..<3000 {
            let bytes = Self.input(&random, length: random.below(200))
            var reader = CSVReader()
            var reference = ReferenceCSVReader()
            var got: [ReferenceCSVReader.Record] = []
            var expected: [ReferenceCSVReader.Record] = []
            for piece in Self.pieces(bytes, &random) {
                got += Self.plain(reader.feed(piece))
                expected += reference.feed(piece)
            }
            got += Self.plain(reader.finish())
            expected += reference.finish()
            #expect(got == expected, "input \(bytes)")
        }
    }

    @Test func limitsMatchThePreviousReader() {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: CSVReader.maxFieldBytes)
        let inputs: [[UInt8]] = [
            long + Array(",1\n".utf8),
            long + Array("y,1\nok,2\n".utf8),
            Array("\"".utf8) + long + Array("y\",1\nok,2".utf8),
            Array(repeating: UInt8(ascii: ","), count: CSVReader.maxFields + 3) + Array("\na,b\n".utf8),
            Array(repeating: UInt8(ascii: ","), count: CSVReader.maxFields - 1) + Array("\r\n".utf8),
        ]
        for bytes in inputs {
            for pieceSize in [1 << 16, 7, bytes.count] {
                var reader = CSVReader()
                var reference = ReferenceCSVReader()
                var got: [ReferenceCSVReader.Record] = []
                var expected: [ReferenceCSVReader.Record] = []
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + pieceSize)
                    got += Self.plain(reader.feed(bytes[offset..<end]))
                    expected += reference.feed(bytes[offset..<end])
                    offset = end
                }
                got += Self.plain(reader.finish())
                expected += reference.finish()
                // Compared as one Bool: the records hold 1 MiB fields, too large to print on a failure.
                let same = got == expected
                let sizes = "\(got.map { $0.fields.map(\.count) }) vs \(expected.map { $0.fields.map(\.count) })"
                let errors = "\(got.map(\.error)) vs \(expected.map(\.error))"
                #expect(same, "\(bytes.count) bytes in pieces of \(pieceSize): field sizes \(sizes), errors \(errors)")
                #expect(!got.isEmpty)
            }
        }
    }

    @Test func rowsMatchTheRecordsParsedByTheRulesOfSQLValue() throws {
        let set = Contract.DataSet(
            name: "t",
            owner: "o",
            columns: [
                .init(name: "i", type: .integer), .init(name: "s", type: .text), .init(name: "r", type: .real),
                .init(name: "d", type: .date),
            ],
            readable: ["i", "s", "r", "d"],
            identity: "s"
        )
        var random = Generator(state: 29)
        let integers = [
            "0", "-0", "007", "-", "--1", "1-", "+1", "9223372036854775807", "9223372036854775808",
            "-9223372036854775808", "-9223372036854775809", "123456789012345678901", "", "\"\"", "\"12\"", "1 ",
        ]
        let texts = ["abc", "", "\"\"", "\"a,b\"", "\"x\"\"y\"", "é"]
        let reals = ["1.5", "-2e3", "", "nan", "inf", "1e400", ".", "1"]
        let dates = ["2025-02-28", "2024-02-29", "2025-02-29", "", "2025-13-01", "20250101"]
        var csv = "i,s,r,d\n"
        var expected: [[SQLValue]] = []
        var expectedBad = 0
        for _ in 0..<4000 {
            let cells = [
                integers[random.below(integers.count)], texts[random.below(texts.count)],
                reals[random.below(reals.count)], dates[random.below(dates.count)],
            ]
            csv += cells.joined(separator: ",") + "\n"
            // The row by the rules: each cell through SQLValue.parse, as the previous parser did.
            var reference = ReferenceCSVReader()
            let record = try #require(reference.feed(Array((cells.joined(separator: ",") + "\n").utf8)).first)
            var row: [SQLValue] = []
            for (index, column) in set.columns.enumerated() {
                guard let value = SQLValue.parse(record.fields[index], quoted: record.quoted[index], as: column.type)
                else { break }
                row.append(value)
            }
            if row.count == set.columns.count, record.error == nil { expected.append(row) } else { expectedBad += 1 }
        }
        var parser = RowParser(dataSet: set)
        var rows: [[SQLValue]] = []
        var offset = 0
        let bytes = Array(csv.utf8)
        while offset < bytes.count {
            let end = min(bytes.count, offset + 1 + random.below(500))
            rows += try parser.feed(Array(bytes[offset..<end]))
            offset = end
        }
        rows += try parser.finish()
        #expect(rows == expected)
        #expect(parser.goodRowCount == expected.count)
        #expect(parser.badRowCount == expectedBad)
        #expect(expected.count > 100 && expectedBad > 100, "both kinds of rows are exercised")
    }
}

/// The CSV reader as it was before it read records in place (commit 309493b), the reference for the tests above.
struct ReferenceCSVReader {
    struct Record: Hashable {
        var line: Int
        var fields: [[UInt8]]
        var quoted: [Bool]
        var error: String?
    }

    /// The longest field, in bytes.
    static let maxFieldBytes = CSVReader.maxFieldBytes
    /// The most fields in one record.
    static let maxFields = CSVReader.maxFields

    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted, skipping }

    private var state = State.fieldStart
    private var line = 1
    private var recordLine = 1
    private var field: [UInt8] = []
    private var fieldQuoted = false
    private var fields: [[UInt8]] = []
    private var quotedFlags: [Bool] = []
    private var error: String?
    private var records: [Record] = []

    /// Creates an empty one.
    init() {}

    private mutating func endField() {
        var value = field
        if !fieldQuoted, value.last == 0x0D { value.removeLast() }
        if fields.count >= Self.maxFields {
            if error == nil { error = "more than \(Self.maxFields) fields" }
        } else {
            fields.append(value)
            quotedFlags.append(fieldQuoted)
        }
        field.removeAll(keepingCapacity: true)
        fieldQuoted = false
    }

    private mutating func endRecord() {
        let blank = error == nil && fields.count == 1 && fields[0].isEmpty && !quotedFlags[0]
        if !blank {
            records.append(Record(line: recordLine, fields: fields, quoted: quotedFlags, error: error))
        }
        fields.removeAll(keepingCapacity: true)
        quotedFlags.removeAll(keepingCapacity: true)
        error = nil
        state = .fieldStart
        recordLine = line
    }

    private mutating func fail(_ reason: String) {
        if error == nil { error = reason }
        state = .skipping
        field.removeAll(keepingCapacity: true)
        fieldQuoted = false
    }

    /// Feed bytes; returns the records they complete.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [Record] {
        for byte in bytes {
            if byte == 0x0A { line += 1 }
            switch state {
            case .fieldStart:
                if byte == UInt8(ascii: "\"") {
                    state = .quoted
                    fieldQuoted = true
                } else if byte == UInt8(ascii: ",") {
                    endField()
                } else if byte == 0x0A {
                    endField()
                    endRecord()
                } else {
                    field.append(byte)
                    state = .unquoted
                }
            case .unquoted:
                if byte == UInt8(ascii: ",") {
                    endField()
                    state = .fieldStart
                } else if byte == 0x0A {
                    endField()
                    endRecord()
                } else if byte == UInt8(ascii: "\"") {
                    fail("a quote inside an unquoted field")
                } else if field.count >= Self.maxFieldBytes {
                    fail("a field longer than \(Self.maxFieldBytes) bytes")
                } else {
                    field.append(byte)
                }
            case .quoted:
                if byte == UInt8(ascii: "\"") {
                    state = .quoteInQuoted
                } else if field.count >= Self.maxFieldBytes {
                    fail("a field longer than \(Self.maxFieldBytes) bytes")
                } else {
                    field.append(byte)
                }
            case .quoteInQuoted:
                if byte == UInt8(ascii: "\"") {
                    field.append(byte)
                    state = .quoted
                } else if byte == UInt8(ascii: ",") {
                    endField()
                    state = .fieldStart
                } else if byte == 0x0A {
                    endField()
                    endRecord()
                } else if byte == 0x0D {
                    // CR of a CRLF after a closing quote.
                } else {
                    fail("bytes after a closing quote")
                }
            case .skipping:
                if byte == 0x0A {
                    if fields.isEmpty {
                        fields.append([])
                        quotedFlags.append(false)
                    }
                    endRecord()
                }
            }
        }
        defer { records.removeAll(keepingCapacity: true) }
        return records
    }

    /// End of input: the last record if it had no line break, or an error record for an unterminated quote.
    mutating func finish() -> [Record] {
        switch state {
        case .fieldStart:
            if !fields.isEmpty {
                endField()
                endRecord()
            }
        case .unquoted, .quoteInQuoted:
            endField()
            endRecord()
        case .quoted:
            fail("an unterminated quoted field at the end of the file")
            fields.append([])
            quotedFlags.append(false)
            endRecord()
        case .skipping:
            if fields.isEmpty {
                fields.append([])
                quotedFlags.append(false)
            }
            endRecord()
        }
        defer { records.removeAll(keepingCapacity: true) }
        return records
    }
}
