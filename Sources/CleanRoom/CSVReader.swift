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
    /// The current record's field bytes, one after the other (reused from record to record: no allocation per
    /// field or record once it has grown).
    private var bytes: [UInt8] = []
    /// Where each completed field of the current record ends in ``bytes``.
    private var ends: [Int] = []
    /// Where the field being read starts in ``bytes``.
    private var fieldStart = 0
    private var fieldQuoted = false
    private var quotedFlags: [Bool] = []
    private var error: String?

    /// Creates an empty one.
    public init() {}

    /// A completed record as the reader holds it: it points into the reader's buffers, so it is valid only during
    /// the ``RecordSink/record(_:)`` call that gets it (never kept).
    struct RecordView {
        /// The 1-based line the record starts on.
        let line: Int
        /// Why the record is malformed, or nil.
        let error: String?
        let bytes: UnsafeBufferPointer<UInt8>
        let ends: UnsafeBufferPointer<Int>
        let quoted: UnsafeBufferPointer<Bool>

        /// The number of fields.
        var count: Int { ends.count }

        /// Field `index`'s bytes (quotes removed, `""` unescaped).
        func field(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            let start = index == 0 ? 0 : ends[index - 1]
            return UnsafeBufferPointer(rebasing: bytes[start..<ends[index]])
        }
    }

    /// Takes the records a reader completes, without copying them.
    protocol RecordSink {
        /// One completed record (blank lines are not records).
        mutating func record(_ record: RecordView)
    }

    /// Collects records as values (what ``feed(_:)`` returns).
    private struct Collector: RecordSink {
        var records: [Record] = []
        mutating func record(_ record: RecordView) {
            records.append(
                Record(
                    line: record.line,
                    fields: (0..<record.count).map { Array(record.field($0)) },
                    quoted: Array(record.quoted),
                    error: record.error
                )
            )
        }
    }

    private mutating func endField() {
        if !fieldQuoted, bytes.count > fieldStart, bytes[bytes.count - 1] == 0x0D { bytes.removeLast() }
        if ends.count >= Self.maxFields {
            if error == nil { error = "more than \(Self.maxFields) fields" }
            bytes.removeSubrange(fieldStart...)
        } else {
            ends.append(bytes.count)
            quotedFlags.append(fieldQuoted)
        }
        fieldStart = bytes.count
        fieldQuoted = false
    }

    private mutating func endRecord(_ sink: inout some RecordSink) {
        let blank = error == nil && ends.count == 1 && ends[0] == 0 && !quotedFlags[0]
        if !blank {
            bytes.withUnsafeBufferPointer { bytes in
                ends.withUnsafeBufferPointer { ends in
                    quotedFlags.withUnsafeBufferPointer { quoted in
                        sink.record(
                            RecordView(line: recordLine, error: error, bytes: bytes, ends: ends, quoted: quoted)
                        )
                    }
                }
            }
        }
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        quotedFlags.removeAll(keepingCapacity: true)
        fieldStart = 0
        error = nil
        state = .fieldStart
        recordLine = line
    }

    private mutating func fail(_ reason: String) {
        if error == nil { error = reason }
        state = .skipping
        bytes.removeSubrange(fieldStart...)
        fieldQuoted = false
    }

    /// An empty field when a skipped record has none (so a malformed record always has at least one).
    private mutating func endSkipped(_ sink: inout some RecordSink) {
        if ends.isEmpty {
            ends.append(bytes.count)
            quotedFlags.append(false)
        }
        endRecord(&sink)
    }

    /// Feed bytes; returns the records they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Record] {
        var collector = Collector()
        let input = Array(bytes)
        input.withUnsafeBufferPointer { feed($0, into: &collector) }
        return collector.records
    }

    /// End of input: the last record if it had no line break, or an error record for an unterminated quote.
    public mutating func finish() -> [Record] {
        var collector = Collector()
        finish(into: &collector)
        return collector.records
    }

    /// Feed bytes; each record they complete goes to `sink` (no copy of its fields).
    mutating func feed(_ input: UnsafeBufferPointer<UInt8>, into sink: inout some RecordSink) {
        let comma = UInt8(ascii: ",")
        let quote = UInt8(ascii: "\"")
        let newline: UInt8 = 0x0A
        var index = 0
        let count = input.count
        while index < count {
            let byte = input[index]
            index += 1
            if byte == newline { line += 1 }
            switch state {
            case .fieldStart:
                if byte == quote {
                    state = .quoted
                    fieldQuoted = true
                } else if byte == comma {
                    endField()
                } else if byte == newline {
                    endField()
                    endRecord(&sink)
                } else {
                    bytes.append(byte)
                    state = .unquoted
                }
            case .unquoted:
                if byte == comma {
                    endField()
                    state = .fieldStart
                } else if byte == newline {
                    endField()
                    endRecord(&sink)
                } else if byte == quote {
                    fail("a quote inside an unquoted field")
                } else if bytes.count - fieldStart >= Self.maxFieldBytes {
                    fail("a field longer than \(Self.maxFieldBytes) bytes")
                } else {
                    bytes.append(byte)
                    // The rest of an ordinary run in one go: bytes that are neither comma, quote nor line break.
                    var end = index
                    while end < count, input[end] != comma, input[end] != newline, input[end] != quote { end += 1 }
                    if end > index {
                        let room = Self.maxFieldBytes - (bytes.count - fieldStart)
                        if end - index > room {
                            fail("a field longer than \(Self.maxFieldBytes) bytes")
                        } else {
                            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<end]))
                        }
                        index = end
                    }
                }
            case .quoted:
                if byte == quote {
                    state = .quoteInQuoted
                } else if bytes.count - fieldStart >= Self.maxFieldBytes {
                    fail("a field longer than \(Self.maxFieldBytes) bytes")
                } else {
                    bytes.append(byte)
                }
            case .quoteInQuoted:
                if byte == quote {
                    bytes.append(byte)
                    state = .quoted
                } else if byte == comma {
                    endField()
                    state = .fieldStart
                } else if byte == newline {
                    endField()
                    endRecord(&sink)
                } else if byte == 0x0D {
                    // CR of a CRLF after a closing quote.
                } else {
                    fail("bytes after a closing quote")
                }
            case .skipping:
                if byte == newline { endSkipped(&sink) }
            }
        }
    }

    /// End of input, the records going to `sink`: the last record if it had no line break, or an error record
    /// for an unterminated quote.
    mutating func finish(into sink: inout some RecordSink) {
        switch state {
        case .fieldStart:
            if !ends.isEmpty {
                endField()
                endRecord(&sink)
            }
        case .unquoted, .quoteInQuoted:
            endField()
            endRecord(&sink)
        case .quoted:
            fail("an unterminated quoted field at the end of the file")
            ends.append(bytes.count)
            quotedFlags.append(false)
            endRecord(&sink)
        case .skipping:
            endSkipped(&sink)
        }
    }
}
