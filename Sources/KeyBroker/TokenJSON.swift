public import AttestationAPI
internal import EnclaveCore

/// The release path's JSON reader and writer for `TokenValue`, no `Codable`. The reader is the package's one strict
/// tokenizer (EnclaveCore's `JSONTape`, which collateral and the clean room's canonical JSON are read with too) under
/// the key broker's rules: containers nested at most `maximumDepth` deep, the numbers below.
///
/// `JSONDecoder` read a token's header and payload through `TokenValue`'s `init(from:)`, which tries six types in
/// turn and builds a `DecodingError` for each miss; with the duplicate-member prescan before it, that was half of a
/// release's time. This reader makes the same values (`TokenValue/integer(_:)` for a number that is a whole number
/// and fits in `Int`, however it is written; `TokenValue/double(_:)` for any other finite number) and is stricter
/// where `JSONDecoder` is lenient: it refuses a member named twice, nesting deeper than the limit given, trailing
/// commas, trailing bytes, control characters and lone surrogates in strings, invalid UTF-8 and numbers out of
/// `Double`'s range.
///
/// The writer makes the bytes `TokenValue/jsonText` makes (members sorted by their UTF-8 bytes, slashes
/// unescaped, `JSONEncoder`'s escapes); a number is written by `JSONEncoder` itself, and an object with a non-ASCII
/// member name falls back to `TokenValue/jsonText`, so the output never differs.
public enum TokenJSON {
    /// Why JSON text was refused: the reason and the byte offset.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What was wrong.
        public let reason: String
        /// Where, in bytes from the start.
        public let offset: Int

        /// `"<reason> at offset <offset>"`.
        public var description: String { "\(reason) at offset \(offset)" }
    }

    /// Parses one JSON value filling all of `bytes` (whitespace around it allowed), nesting at most `maximumDepth`
    /// containers deep.
    public static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>,
        maximumDepth: Int
    ) throws(Failure) -> TokenValue {
        let tokens: [JSONTape.Token]
        do {
            tokens = try JSONTape.tokens(
                of: bytes,
                rules: JSONTape.Rules(maximumDepth: maximumDepth, scalarsNest: false)
            )
        } catch {
            switch error.code {
            case .duplicateKey:
                let name = TokenValue.string(String((error.key ?? "").prefix(64))).jsonText
                throw Failure(reason: "duplicate member \(name)", offset: error.offset)
            case .nesting:
                throw Failure(reason: "nesting deeper than \(maximumDepth) levels", offset: error.offset)
            case .syntax, .notAllowed:
                throw Failure(reason: error.reason, offset: error.offset)
            }
        }
        return value(at: 0, of: tokens, in: bytes)
    }

    /// The value of the token at `index` (the tokenizer checked everything: strings are valid UTF-8 with valid
    /// escapes, keys are unique, nesting is within the limit, numbers are finite).
    static func value(
        at index: Int,
        of tokens: [JSONTape.Token],
        in bytes: UnsafeBufferPointer<UInt8>
    ) -> TokenValue {
        let token = tokens[index]
        switch token.kind {
        case .null: return .null
        case .bool: return .bool(token.value == 1)
        case .integer: return .integer(token.value)
        case .double: return number(token, in: bytes)
        case .string, .escapedString: return .string(string(token, in: bytes))
        case .array:
            var elements: [TokenValue] = []
            var element = index + 1
            while element < token.next {
                elements.append(value(at: element, of: tokens, in: bytes))
                element = tokens[element].next
            }
            return .array(elements)
        case .object:
            var count = 0
            var member = index + 1
            while member < token.next {
                count += 1
                member = tokens[member + 1].next
            }
            var members: [String: TokenValue] = Dictionary(minimumCapacity: count)
            member = index + 1
            while member < token.next {
                members[string(tokens[member], in: bytes)] = value(at: member + 1, of: tokens, in: bytes)
                member = tokens[member + 1].next
            }
            return .object(members)
        }
    }

    /// A string token's value (valid UTF-8 and escapes, as the tokenizer checked).
    static func string(_ token: JSONTape.Token, in bytes: UnsafeBufferPointer<UInt8>) -> String {
        let raw = UnsafeBufferPointer(rebasing: bytes[token.start..<token.end])
        return JSONString.decoded(raw, escaped: token.kind == .escapedString) ?? ""
    }

    /// A number the tokenizer made a double (a fraction, an exponent, or an integer past ±2^53):
    /// `TokenValue/integer(_:)` when its value is a whole number that fits in `Int` (`2.0`, `2e0`,
    /// `9007199254740993` alike, as `JSONDecoder` reads them), else the tokenizer's finite double.
    static func number(_ token: JSONTape.Token, in bytes: UnsafeBufferPointer<UInt8>) -> TokenValue {
        var position = token.start
        let end = token.end
        func isDigit(_ index: Int) -> Bool {
            index < end && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")
        }
        let negative = position < end && bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        let integerStart = position
        while isDigit(position) { position += 1 }
        let integerEnd = position
        var fractionStart = position
        var fractionEnd = position
        if position < end, bytes[position] == UInt8(ascii: ".") {
            position += 1
            fractionStart = position
            while isDigit(position) { position += 1 }
            fractionEnd = position
        }
        var exponent = 0
        if position < end, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            var exponentNegative = false
            if position < end,
                bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
            {
                exponentNegative = bytes[position] == UInt8(ascii: "-")
                position += 1
            }
            while isDigit(position) {
                exponent = min(exponent * 10 + Int(bytes[position] - UInt8(ascii: "0")), 100_000)
                position += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        if let integer = wholeNumber(
            bytes: bytes,
            integer: integerStart..<integerEnd,
            fraction: fractionStart..<fractionEnd,
            exponent: exponent,
            negative: negative
        ) {
            return .integer(integer)
        }
        return .double(Double(bitPattern: UInt64(UInt(bitPattern: token.value))))
    }

    /// The exact value of digits × 10^exponent when it is a whole number within `Int`, else `nil`.
    static func wholeNumber(
        bytes: UnsafeBufferPointer<UInt8>,
        integer: Range<Int>,
        fraction: Range<Int>,
        exponent: Int,
        negative: Bool
    ) -> Int? {
        // The significant digits (integer then fraction), and the power of ten that scales them.
        let digits = Array(bytes[integer]) + Array(bytes[fraction])
        var first = 0
        var end = digits.count
        var scale = exponent - fraction.count
        while first < end, digits[first] == UInt8(ascii: "0") { first += 1 }
        if first == end { return 0 }
        while scale < 0, digits[end - 1] == UInt8(ascii: "0") {
            end -= 1
            scale += 1
        }
        guard scale >= 0, end - first + scale <= 19 else { return nil }
        // At most 19 digits: the magnitude fits in a UInt64.
        var magnitude: UInt64 = 0
        for digit in digits[first..<end] {
            magnitude = magnitude * 10 + UInt64(digit - UInt8(ascii: "0"))
        }
        for _ in 0..<scale {
            let (product, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            magnitude = product
        }
        if negative {
            guard magnitude <= UInt64(Int.max) + 1 else { return nil }
            return magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)
        }
        guard magnitude <= UInt64(Int.max) else { return nil }
        return Int(magnitude)
    }

    /// Parses one JSON value filling all of `bytes`.
    public static func parse(_ bytes: [UInt8], maximumDepth: Int) throws(Failure) -> TokenValue {
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<TokenValue, Failure> in
            do throws(Failure) {
                return .success(try parse(buffer, maximumDepth: maximumDepth))
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// `value` as JSON text, the same bytes as `TokenValue/jsonText`.
    public static func text(_ value: TokenValue) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        guard write(value, to: &output) else { return value.jsonText }
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends `value`'s JSON text to `output`; `false` when an object has a non-ASCII member name (whose order
    /// `JSONEncoder` decides).
    static func write(_ value: TokenValue, to output: inout [UInt8]) -> Bool {
        switch value {
        case .string(let text): writeString(text, to: &output)
        case .bool(let flag): output.append(contentsOf: flag ? Array("true".utf8) : Array("false".utf8))
        case .null: output.append(contentsOf: Array("null".utf8))
        case .integer, .double: output.append(contentsOf: value.jsonText.utf8)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                guard write(element, to: &output) else { return false }
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            var keys: [(name: String, bytes: [UInt8])] = []
            keys.reserveCapacity(members.count)
            for name in members.keys {
                let bytes = Array(name.utf8)
                guard bytes.allSatisfy({ $0 < 0x80 }) else { return false }
                keys.append((name, bytes))
            }
            keys.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            output.append(UInt8(ascii: "{"))
            for (index, key) in keys.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(key.name, to: &output)
                output.append(UInt8(ascii: ":"))
                guard let member = members[key.name], write(member, to: &output) else { return false }
            }
            output.append(UInt8(ascii: "}"))
        }
        return true
    }

    /// A JSON string literal with `JSONEncoder`'s escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control
    /// characters as `\u00xx`; everything else (slashes, non-ASCII) as is (`JSONString/write(_:to:)`, which the
    /// clean room's canonical encoding writes with too).
    static func writeString(_ text: String, to output: inout [UInt8]) {
        JSONString.write(text, to: &output)
    }
}
