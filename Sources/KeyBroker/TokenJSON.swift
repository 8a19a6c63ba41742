public import AttestationAPI
internal import EnclaveCore

/// The release path's own JSON reader and writer for `TokenValue`: one pass over the bytes, no `Codable`.
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
    static func value(at index: Int, of tokens: [JSONTape.Token], in bytes: UnsafeBufferPointer<UInt8>) -> TokenValue {
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
            var members: [String: TokenValue] = [:]
            var member = index + 1
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
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
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
        for digit in digits[first..<end] { magnitude = magnitude * 10 + UInt64(digit - UInt8(ascii: "0")) }
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

    /// The reader this one replaced (kept until the differential tests pass; then removed).
    static func legacyParse(_ bytes: [UInt8], maximumDepth: Int) throws(Failure) -> TokenValue {
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<TokenValue, Failure> in
            do throws(Failure) {
                var reader = Reader(bytes: buffer, maximumDepth: maximumDepth)
                reader.skipWhitespace()
                let value = try reader.value(depth: 0)
                reader.skipWhitespace()
                guard reader.position == buffer.count else { throw reader.fail("trailing bytes") }
                return .success(value)
            } catch { return .failure(error) }
        }
        return try result.get()
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
    /// characters as `\u00xx`; everything else (slashes, non-ASCII) as is.
    static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// The reader over one buffer.
    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        let maximumDepth: Int
        var position = 0

        func fail(_ reason: String) -> Failure { Failure(reason: reason, offset: position) }

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(Failure) -> TokenValue {
            guard position < bytes.count else { throw fail("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                guard depth < maximumDepth else { throw fail("nesting deeper than \(maximumDepth) levels") }
                return try object(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < maximumDepth else { throw fail("nesting deeper than \(maximumDepth) levels") }
                return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            default: return try number()
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw fail("unexpected end") }
            for index in 0..<count where bytes[position + index] != word.utf8Start[index] {
                throw fail("invalid literal")
            }
            position += count
        }

        mutating func object(depth: Int) throws(Failure) -> TokenValue {
            position += 1
            var members: [String: TokenValue] = [:]
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw fail("expected a member name")
                }
                let nameOffset = position
                let name = try string()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipWhitespace()
                let member = try value(depth: depth)
                guard members.updateValue(member, forKey: name) == nil else {
                    throw Failure(
                        reason: "duplicate member \(TokenValue.string(String(name.prefix(64))).jsonText)",
                        offset: nameOffset
                    )
                }
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(members)
                } else {
                    throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> TokenValue {
            position += 1
            var elements: [TokenValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth))
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                } else {
                    throw fail("expected ',' or ']'")
                }
            }
        }

        /// A string literal: checked UTF-8, escapes decoded (surrogate pairs joined, a lone one refused), no
        /// control characters.
        mutating func string() throws(Failure) -> String {
            position += 1
            let start = position
            var plain = true
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") { break }
                if byte < 0x20 { throw fail("control character in a string") }
                if byte == UInt8(ascii: "\\") {
                    plain = false
                    position += 2
                } else {
                    position += 1
                }
            }
            guard position < bytes.count else { throw fail("unterminated string") }
            let end = position
            position += 1
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if plain {
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw Failure(reason: "invalid UTF-8 in a string", offset: start)
                }
                return text
            }
            return try unescape(raw, offset: start)
        }

        func unescape(_ raw: UnsafeBufferPointer<UInt8>, offset: Int) throws(Failure) -> String {
            var output: [UInt8] = []
            output.reserveCapacity(raw.count)
            var index = 0
            func bad(_ reason: String) -> Failure { Failure(reason: reason, offset: offset + index) }
            func hex4(at position: Int) throws(Failure) -> UInt32 {
                guard position + 4 <= raw.count else { throw bad("truncated \\u escape") }
                var value: UInt32 = 0
                for byte in raw[position..<position + 4] {
                    let digit: UInt8
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                    default: throw bad("invalid \\u escape")
                    }
                    value = value << 4 | UInt32(digit)
                }
                return value
            }
            while index < raw.count {
                let byte = raw[index]
                guard byte == UInt8(ascii: "\\") else {
                    output.append(byte)
                    index += 1
                    continue
                }
                guard index + 1 < raw.count else { throw bad("truncated escape") }
                let escape = raw[index + 1]
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0C)
                case UInt8(ascii: "n"): output.append(0x0A)
                case UInt8(ascii: "r"): output.append(0x0D)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4(at: index + 2)
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 12 <= raw.count, raw[index + 6] == UInt8(ascii: "\\"),
                            raw[index + 7] == UInt8(ascii: "u")
                        else { throw bad("lone surrogate") }
                        let low = try hex4(at: index + 8)
                        guard (0xDC00..<0xE000).contains(low) else { throw bad("lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw bad("lone surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw bad("invalid \\u escape") }
                    output.append(contentsOf: Array(String(Character(unicode)).utf8))
                    index += 4
                default: throw bad("invalid escape")
                }
                index += 2
            }
            guard let text = String(validating: output, as: UTF8.self) else {
                throw Failure(reason: "invalid UTF-8 in a string", offset: offset)
            }
            return text
        }

        /// A number: `TokenValue/integer(_:)` when its value is a whole number that fits in `Int` (`2`, `2.0`,
        /// `2e0` alike, as `JSONDecoder` reads them), else a finite `TokenValue/double(_:)`.
        mutating func number() throws(Failure) -> TokenValue {
            let start = position
            var negative = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
                negative = true
                position += 1
            }
            func isDigit(_ index: Int) -> Bool {
                index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")
            }
            guard isDigit(position) else { throw fail("invalid value") }
            let integerStart = position
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
                guard !isDigit(position) else { throw fail("leading zero") }
            } else {
                while isDigit(position) { position += 1 }
            }
            let integerEnd = position
            var fractionStart = position
            var fractionEnd = position
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                fractionStart = position
                while isDigit(position) { position += 1 }
                fractionEnd = position
                guard fractionEnd > fractionStart else { throw fail("invalid number") }
            }
            var exponent = 0
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                var exponentNegative = false
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
                {
                    exponentNegative = bytes[position] == UInt8(ascii: "-")
                    position += 1
                }
                let digits = position
                while isDigit(position) {
                    exponent = min(exponent * 10 + Int(bytes[position] - UInt8(ascii: "0")), 100_000)
                    position += 1
                }
                guard position > digits else { throw fail("invalid number") }
                if exponentNegative { exponent = -exponent }
            }
            if let integer = Self.wholeNumber(
                bytes: bytes,
                integer: integerStart..<integerEnd,
                fraction: fractionStart..<fractionEnd,
                exponent: exponent,
                negative: negative
            ) {
                return .integer(integer)
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw Failure(reason: "number out of range", offset: start)
            }
            return .double(value)
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
            for digit in digits[first..<end] { magnitude = magnitude * 10 + UInt64(digit - UInt8(ascii: "0")) }
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
    }
}
