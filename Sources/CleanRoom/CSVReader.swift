/// A streaming CSV reader (RFC 4180): comma-separated fields, records ended by CRLF or LF, fields optionally in
/// double quotes (then they may hold commas, quotes doubled as `""`, and line breaks).
///
/// Feed bytes in any pieces; each completed record comes back with the line it started on. A record that breaks
/// the format (a quote inside an unquoted field, bytes after a closing quote, a field or record over the limits,
/// an unterminated quote at the end) comes back as a record with ``Record/error`` set, so the caller counts and
/// reports it: nothing is dropped silently. Blank lines hold no data and are skipped.
public struct CSVReader: Sendable {
    /// One record.
    public struct Record: Hashable, Sendable {
        /// The 1-based line the record starts on.
        public var line: Int
        /// Its fields, raw bytes (quotes removed, `""` unescaped).
        public var fields: [[UInt8]]
        /// Whether each field was quoted (an empty quoted field is an empty string, an empty unquoted one is
        /// missing).
        public var quoted: [Bool]
        /// Why the record is malformed, or nil.
        public var error: String?
    }

    /// The longest field, in bytes.
    public static let maxFieldBytes = 1 << 20
    /// The most fields in one record.
    public static let maxFields = 1024

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
    public init() {}

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
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Record] {
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
    public mutating func finish() -> [Record] {
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
