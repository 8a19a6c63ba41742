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
                return .failure(
                    CleanRoomError(.malformed, "JSON: \(error.reason) at offset \(error.offset)")
                )
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
                members[try string(tokens[member], in: bytes)] = try value(
                    at: member + 1,
                    of: tokens,
                    in: bytes
                )
                member = tokens[member + 1].next
            }
            return .object(members)
        case .null, .double:
            throw CleanRoomError(
                .malformed,
                "JSON: a value outside the canonical subset at offset \(token.start)"
            )
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

    /// Escaped are only `"`, `\` and the control characters (`JSONString/write(_:to:)`).
    private static func writeString(_ text: String, to out: inout [UInt8]) {
        JSONString.write(text, to: &out)
    }
}
