internal import EnclaveCore
internal import Foundation

/// A JSON value in the clean room's canonical subset, and its one canonical encoding.
///
/// The canonical encoding of a value is exactly:
/// - UTF-8, no byte order mark, no whitespace outside strings;
/// - objects with their members sorted by the UTF-8 bytes of their keys, no duplicate keys;
/// - integers only (no fraction, no exponent), in the range of `Int64`, shortest form: no `+`, no leading zeros,
///   no `-0`;
/// - `true` and `false`; there is no `null` (an absent optional member is left out);
/// - strings in Unicode Normalization Form C; escaped are only `"` (`\"`), `\` (`\\`) and the control characters
///   below U+0020 (`\b`, `\t`, `\n`, `\f`, `\r`, every other one as `\u00xx` with lower-case hex); everything else is
///   written as itself.
///
/// ``parseCanonical(_:)`` accepts bytes only when they are already the canonical encoding of what they parse to,
/// so one value has exactly one byte string and so exactly one SHA-256.
public indirect enum CanonicalJSON: Hashable, Sendable {
    /// A boolean.
    case bool(Bool)
    /// An integer (the canonical form has no other numbers).
    case integer(Int64)
    /// A string (in NFC when canonical).
    case string(String)
    /// An array.
    case array([CanonicalJSON])
    /// An object; member order is irrelevant here, the encoding sorts them.
    case object([String: CanonicalJSON])

    /// The most bytes a document may have.
    public static let maxBytes = 1 << 20
    /// The deepest nesting of arrays and objects.
    public static let maxDepth = 32

    /// The canonical encoding.
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        Self.write(self, to: &out)
        return out
    }

    /// Parse any JSON text within the limits (whitespace and member order free) into a value, refusing what the
    /// canonical subset cannot hold (`null`, fractions, exponents, duplicate keys, lone surrogates).
    ///
    /// - Throws: ``CleanRoomError/Code/malformed`` or ``CleanRoomError/Code/limitExceeded``.
    public static func parse(_ bytes: [UInt8]) throws(CleanRoomError) -> CanonicalJSON {
        guard bytes.count <= maxBytes else {
            throw CleanRoomError(.limitExceeded, "JSON document over \(maxBytes) bytes")
        }
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<CanonicalJSON, CleanRoomError> in
            let tokens: [JSONTape.Token]
            do throws(JSONTape.Failure) { tokens = try JSONTape.tokens(of: buffer, rules: rules) } catch {
                guard error.code != .nesting else {
                    return .failure(CleanRoomError(.limitExceeded, "JSON nested deeper than \(maxDepth)"))
                }
                return .failure(CleanRoomError(.malformed, "JSON: \(error.reason) at offset \(error.offset)"))
            }
            do throws(CleanRoomError) {
                return .success(try value(at: 0, of: tokens, in: buffer))
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// What the shared tokenizer accepts here: values nested at most `maxDepth` levels below the document (a
    /// container at that depth must be empty), no `null`, integers only (within `Int64`).
    static let rules = JSONTape.Rules(
        maximumDepth: maxDepth + 1,
        scalarsNest: true,
        allowsNull: false,
        integersOnly: true
    )

    /// The value of the token at `index`; under `rules` there are no `null`s and every number is an exact integer
    /// (anything else is refused, not trusted).
    private static func value(
        at index: Int,
        of tokens: [JSONTape.Token],
        in bytes: UnsafeBufferPointer<UInt8>
    ) throws(CleanRoomError) -> CanonicalJSON {
        let token = tokens[index]
        switch token.kind {
        case .bool: return .bool(token.value == 1)
        case .integer: return .integer(Int64(token.value))
        case .string, .escapedString: return .string(try string(token, in: bytes))
        case .array:
            var items: [CanonicalJSON] = []
            var item = index + 1
            while item < token.next {
                items.append(try value(at: item, of: tokens, in: bytes))
                item = tokens[item].next
            }
            return .array(items)
        case .object:
            var members: [String: CanonicalJSON] = [:]
            var member = index + 1
            while member < token.next {
                members[try string(tokens[member], in: bytes)] = try value(at: member + 1, of: tokens, in: bytes)
                member = tokens[member + 1].next
            }
            return .object(members)
        case .null, .double:
            throw CleanRoomError(.malformed, "JSON: a value outside the canonical subset at offset \(token.start)")
        }
    }

    private static func string(
        _ token: JSONTape.Token,
        in bytes: UnsafeBufferPointer<UInt8>
    ) throws(CleanRoomError)
        -> String
    {
        let raw = UnsafeBufferPointer(rebasing: bytes[token.start..<token.end])
        guard let text = JSONString.decoded(raw, escaped: token.kind == .escapedString) else {
            throw CleanRoomError(.malformed, "JSON: invalid string at offset \(token.start)")
        }
        return text
    }

    /// The reader this one replaced (kept until the differential tests pass; then removed).
    static func legacyParse(_ bytes: [UInt8]) throws(CleanRoomError) -> CanonicalJSON {
        guard bytes.count <= maxBytes else {
            throw CleanRoomError(.limitExceeded, "JSON document over \(maxBytes) bytes")
        }
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw CleanRoomError(.malformed, "trailing bytes after the JSON value at offset \(parser.position)")
        }
        return value
    }

    /// Parse bytes that must already be canonical.
    ///
    /// - Throws: ``CleanRoomError/Code/nonCanonical`` when the bytes parse but are not the canonical encoding
    ///   (whitespace, member order, escapes, number form, strings not in NFC), or the errors of ``parse(_:)``.
    public static func parseCanonical(_ bytes: [UInt8]) throws(CleanRoomError) -> CanonicalJSON {
        let value = try parse(bytes)
        guard value.isNFC else {
            throw CleanRoomError(.nonCanonical, "a string is not in Unicode Normalization Form C")
        }
        guard value.canonicalBytes == bytes else {
            throw CleanRoomError(
                .nonCanonical,
                "not in canonical form (sorted keys, no whitespace, minimal escapes, shortest integers)"
            )
        }
        return value
    }

    /// The value with every string (keys too) converted to NFC.
    public var normalized: CanonicalJSON {
        switch self {
        case .bool, .integer: return self
        case .string(let text): return .string(Self.nfc(text))
        case .array(let items): return .array(items.map(\.normalized))
        case .object(let members):
            var out: [String: CanonicalJSON] = [:]
            for (key, value) in members { out[Self.nfc(key)] = value.normalized }
            return .object(out)
        }
    }

    var isNFC: Bool {
        switch self {
        case .bool, .integer: return true
        case .string(let text): return Self.isNFC(text)
        case .array(let items): return items.allSatisfy(\.isNFC)
        case .object(let members): return members.allSatisfy { Self.isNFC($0.key) && $0.value.isNFC }
        }
    }

    static func nfc(_ text: String) -> String { text.precomposedStringWithCanonicalMapping }

    static func isNFC(_ text: String) -> Bool {
        // ASCII is always NFC; compare bytes (String equality is canonical equivalence, which would hide it).
        text.utf8.allSatisfy { $0 < 0x80 } || Array(nfc(text).utf8) == Array(text.utf8)
    }

    // MARK: - Writing

    private static func write(_ value: CanonicalJSON, to out: inout [UInt8]) {
        switch value {
        case .bool(let flag): out.append(contentsOf: Array((flag ? "true" : "false").utf8))
        case .integer(let number): out.append(contentsOf: Array(String(number).utf8))
        case .string(let text): writeString(text, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let keys = members.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for (index, key) in keys.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                // Force-unwrap is safe: the key came from the dictionary.
                write(members[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: - Parsing

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        func fail(_ what: String) -> CleanRoomError {
            CleanRoomError(.malformed, "JSON: \(what) at offset \(position)")
        }

        mutating func expect(_ literal: String) throws(CleanRoomError) {
            let expected = Array(literal.utf8)
            guard bytes.count - position >= expected.count,
                Array(bytes[position..<position + expected.count]) == expected
            else { throw fail("expected \(literal)") }
            position += expected.count
        }

        mutating func value(depth: Int) throws(CleanRoomError) -> CanonicalJSON {
            guard depth <= CanonicalJSON.maxDepth else {
                throw CleanRoomError(.limitExceeded, "JSON nested deeper than \(CanonicalJSON.maxDepth)")
            }
            guard position < bytes.count else { throw fail("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"): throw fail("null is not allowed (leave the member out)")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try integer())
            default: throw fail("unexpected byte")
            }
        }

        mutating func object(depth: Int) throws(CleanRoomError) -> CanonicalJSON {
            position += 1
            var members: [String: CanonicalJSON] = [:]
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw fail("expected a key")
                }
                let key = try string()
                guard members[key] == nil else { throw fail("duplicate key \"\(key)\"") }
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                members[key] = try value(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw fail("unterminated object") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                try expect("}")
                return .object(members)
            }
        }

        mutating func array(depth: Int) throws(CleanRoomError) -> CanonicalJSON {
            position += 1
            var items: [CanonicalJSON] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw fail("unterminated array") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                try expect("]")
                return .array(items)
            }
        }

        mutating func integer() throws(CleanRoomError) -> Int64 {
            let start = position
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            let digitsStart = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            guard position > digitsStart else { throw fail("expected digits") }
            if position < bytes.count,
                [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position])
            {
                throw fail("only integers are allowed")
            }
            if position - digitsStart > 1, bytes[digitsStart] == UInt8(ascii: "0") { throw fail("leading zero") }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            guard let number = Int64(text) else { throw fail("integer out of range") }
            return number
        }

        mutating func hex4() throws(CleanRoomError) -> UInt32 {
            guard bytes.count - position >= 4 else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw fail("bad hex digit in \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        mutating func string() throws(CleanRoomError) -> String {
            position += 1
            var out: [UInt8] = []
            while true {
                guard position < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    break
                }
                guard byte >= 0x20 else { throw fail("unescaped control character in a string") }
                if byte != UInt8(ascii: "\\") {
                    out.append(byte)
                    position += 1
                    continue
                }
                position += 1
                guard position < bytes.count else { throw fail("truncated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        try expect("\\u")
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("lone surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw fail("unknown escape")
                }
            }
            guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
            return text
        }
    }
}
