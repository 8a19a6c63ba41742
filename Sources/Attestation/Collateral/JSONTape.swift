internal import EnclaveCore

/// A JSON document read in one pass into a flat list of tokens (a "tape"): the collateral documents' reader, and the
/// only strict JSON parser of this module (`JSONValue`, the tree the Azure vTPM evidence is read as, is built from
/// a tape). A tree costs an array per object and per array and a box per nested value; the TCB info alone has a few
/// hundred small objects, and building and releasing that tree was most of its parse time. The tape is one array; a
/// container's token records where its contents end, so a lookup skips over what it does not read.
///
/// What is accepted: RFC 8259, one value, no trailing bytes, UTF-8, escapes including surrogate pairs, no duplicate
/// keys (in every object, read or not), nesting below `JSONValue/maxDepth`.
final class JSONTape: Sendable {
    /// What a token is.
    enum Kind: UInt8, Sendable {
        case object, array, string, escapedString, integer, double, bool, null
    }

    /// One value. Strings: `start..<end` are the raw bytes between the quotes. Containers: `next` is the index of
    /// the token after everything they contain (an object's members are key and value tokens in turn).
    struct Token: Sendable {
        var kind: Kind
        var start: Int
        var end: Int
        var next: Int
        /// Integers: the value; booleans: 1 for true; doubles: the bit pattern.
        var value: Int
    }

    let bytes: [UInt8]
    let tokens: [Token]

    /// Parse exactly one JSON value from `bytes`.
    init(parsing bytes: [UInt8]) throws(EnclaveError) {
        self.bytes = bytes
        var tokens: [Token] = []
        tokens.reserveCapacity(bytes.count / 8 + 4)
        let result: EnclaveError? = bytes.withUnsafeBufferPointer { buffer in
            var parser = Parser(array: bytes, bytes: buffer, tokens: tokens)
            tokens = []
            do throws(EnclaveError) {
                parser.skipWhitespace()
                try parser.value(depth: 0)
                parser.skipWhitespace()
                guard parser.position == buffer.count else {
                    throw EnclaveError.malformedInput("JSON: trailing bytes at offset \(parser.position)")
                }
            } catch {
                return error
            }
            tokens = parser.tokens
            return nil
        }
        if let result { throw result }
        self.tokens = tokens
    }

    /// The string token at `index` as a `JSONString` (`nil` for any other kind).
    func string(at index: Int) -> JSONString? {
        let token = tokens[index]
        guard token.kind == .string || token.kind == .escapedString else { return nil }
        return JSONString(raw: bytes[token.start..<token.end], escaped: token.kind == .escapedString)
    }

    /// Whether the string token at `index` is exactly `text` (as `JSONString/equals(_:)` judges).
    func string(at index: Int, equals text: String) -> Bool {
        let token = tokens[index]
        if token.kind == .escapedString { return string(at: index)?.equals(text) ?? false }
        guard token.kind == .string else { return false }
        var text = text
        return text.withUTF8 { utf8 in
            bytes.withUnsafeBufferPointer {
                Self.equal(UnsafeBufferPointer(rebasing: $0[token.start..<token.end]), utf8)
            }
        }
    }

    /// The value of the member named `key` of the object at `index`, if there is one.
    func member(_ key: String, of index: Int) -> Int? {
        let object = tokens[index]
        guard object.kind == .object else { return nil }
        var key = key
        return key.withUTF8 { utf8 -> Int? in
            bytes.withUnsafeBufferPointer { buffer -> Int? in
                var member = index + 1
                while member < object.next {
                    let token = tokens[member]
                    let matches: Bool
                    if token.kind == .escapedString {
                        matches = JSONString(raw: bytes[token.start..<token.end], escaped: true)
                            .equals(String(decoding: utf8, as: UTF8.self))
                    } else {
                        matches = Self.equal(UnsafeBufferPointer(rebasing: buffer[token.start..<token.end]), utf8)
                    }
                    if matches { return member + 1 }
                    member = tokens[member + 1].next
                }
                return nil
            }
        }
    }

    /// Whether `a` and `b` hold the same bytes.
    static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for index in 0..<a.count where a[index] != b[index] { return false }
        return true
    }

    /// The indices of the elements of the array at `index`.
    func elements(of index: Int) -> [Int] {
        var result: [Int] = []
        var element = index + 1
        while element < tokens[index].next {
            result.append(element)
            element = tokens[element].next
        }
        return result
    }

    private struct Parser {
        /// The document, and the same bytes as a buffer (read byte by byte without bounds checks on a copy).
        let array: [UInt8]
        let bytes: UnsafeBufferPointer<UInt8>
        var tokens: [Token]
        var position = 0

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        func fail(_ what: String) -> EnclaveError { .malformedInput("JSON: \(what) at offset \(position)") }

        mutating func append(_ kind: Kind, _ start: Int, _ end: Int, value: Int = 0) {
            tokens.append(Token(kind: kind, start: start, end: end, next: tokens.count + 1, value: value))
        }

        mutating func value(depth: Int) throws(EnclaveError) {
            guard depth < JSONValue.maxDepth else { throw fail("nesting deeper than \(JSONValue.maxDepth)") }
            guard position < bytes.count else { throw fail("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"): try object(depth: depth)
            case UInt8(ascii: "["): try array(depth: depth)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"):
                try literal("true")
                append(.bool, position - 4, position, value: 1)
            case UInt8(ascii: "f"):
                try literal("false")
                append(.bool, position - 5, position, value: 0)
            case UInt8(ascii: "n"):
                try literal("null")
                append(.null, position - 4, position)
            default: try number()
            }
        }

        mutating func literal(_ word: StaticString) throws(EnclaveError) {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw fail("unexpected end") }
            for index in 0..<count where bytes[position + index] != word.utf8Start[index] {
                throw fail("invalid literal")
            }
            position += count
        }

        /// Whether the key at token `key` equals the key at token `other`, as `JSONString`'s `==` judges.
        func sameKey(_ key: Int, _ other: Int) -> Bool {
            let a = tokens[key]
            let b = tokens[other]
            if a.kind == .string && b.kind == .string {
                return JSONTape.equal(
                    UnsafeBufferPointer(rebasing: bytes[a.start..<a.end]),
                    UnsafeBufferPointer(rebasing: bytes[b.start..<b.end])
                )
            }
            return jsonString(key) == jsonString(other)
        }

        func jsonString(_ index: Int) -> JSONString {
            let token = tokens[index]
            return JSONString(raw: array[token.start..<token.end], escaped: token.kind == .escapedString)
        }

        mutating func object(depth: Int) throws(EnclaveError) {
            let open = tokens.count
            append(.object, position, position)
            position += 1
            var count = 0
            var keys: Set<String> = []  // used once an object grows large
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                close(open)
                return
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw fail("expected a key")
                }
                let key = tokens.count
                try string()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipWhitespace()
                try value(depth: depth + 1)
                let duplicate: Bool
                if count < 16 {
                    var other = open + 1
                    var found = false
                    while other < key {
                        if sameKey(other, key) {
                            found = true
                            break
                        }
                        other = tokens[other + 1].next
                    }
                    duplicate = found
                } else {
                    if keys.isEmpty {
                        var other = open + 1
                        while other < key {
                            if let decoded = jsonString(other).decoded() { keys.insert(decoded) }
                            other = tokens[other + 1].next
                        }
                    }
                    duplicate = !keys.insert(jsonString(key).decoded() ?? "").inserted
                }
                guard !duplicate else { throw fail("duplicate key \"\(jsonString(key).decoded() ?? "")\"") }
                count += 1
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    close(open)
                    return
                } else {
                    throw fail("expected ',' or '}'")
                }
            }
        }

        /// The container at `open` ends here: everything appended since is its contents.
        mutating func close(_ open: Int) {
            tokens[open].next = tokens.count
            tokens[open].end = position
        }

        mutating func array(depth: Int) throws(EnclaveError) {
            let open = tokens.count
            append(.array, position, position)
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                close(open)
                return
            }
            while true {
                skipWhitespace()
                try value(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    close(open)
                    return
                } else {
                    throw fail("expected ',' or ']'")
                }
            }
        }

        /// A string token: checked (UTF-8, escapes, no control characters), not decoded (`JSONString` decodes it).
        mutating func string() throws(EnclaveError) {
            position += 1  // the opening quote
            let start = position
            var escaped = false
            var ascii = true
            var control = false
            // Whether an escape is malformed (judged here as JSONString's decoding judges it), and where the low half
            // of a surrogate pair starts (checked with its high half, not again on its own).
            var badEscape = false
            var pairedLow = -1
            var index = start
            var end: Int?
            let count = bytes.count
            let base = bytes.baseAddress
            while index < count {
                // Eight bytes at a time while none is a quote, a backslash, a control character or non-ASCII.
                if let base {
                    while index + 8 <= count {
                        let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                        if Self.special(word) { break }
                        index += 8
                    }
                    guard index < count else { break }
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    end = index
                    break
                }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    if !badEscape, index != pairedLow { badEscape = !validEscape(at: index, pairedLow: &pairedLow) }
                    index += 2  // the escape's first character; \u digits were checked above
                    continue
                }
                if byte < 0x20 {
                    control = true
                    end = index
                    break
                }
                if byte >= 0x80 { ascii = false }
                index += 1
            }
            guard let end else {
                position = bytes.count
                throw fail("unterminated string")
            }
            position = end
            guard !control else { throw fail("control character in a string") }
            append(escaped ? .escapedString : .string, start, end)
            position += 1
            if !ascii {
                let token = JSONString(raw: array[start..<end], escaped: escaped)
                guard token.isWellFormed(ascii: false) else { throw fail("invalid string") }
            } else if badEscape {
                throw fail("invalid string")
            }
        }

        /// Whether any byte of `word` is a quote, a backslash, below 0x20 or above 0x7F.
        @inline(__always)
        static func special(_ word: UInt64) -> Bool {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            let quote = word ^ 0x2222_2222_2222_2222
            let backslash = word ^ 0x5C5C_5C5C_5C5C_5C5C
            let zeroQuote = (quote &- ones) & ~quote
            let zeroBackslash = (backslash &- ones) & ~backslash
            let control = (word &- 0x2020_2020_2020_2020) & ~word
            return (zeroQuote | zeroBackslash | control | word) & highs != 0
        }

        /// Whether the escape at `index` (a backslash) is well formed, as `JSONString`'s decoding judges it: one of
        /// `"\\/bfnrt`, or `u` and four hexadecimal digits, a high surrogate only followed by an escaped low one
        /// (whose start is recorded in `pairedLow`), never a low surrogate alone.
        func validEscape(at index: Int, pairedLow: inout Int) -> Bool {
            guard index + 1 < bytes.count else { return false }
            switch bytes[index + 1] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                return true
            case UInt8(ascii: "u"):
                guard let code = hex4(at: index + 2) else { return false }
                if (0xD800..<0xDC00).contains(code) {
                    guard index + 7 < bytes.count, bytes[index + 6] == UInt8(ascii: "\\"),
                        bytes[index + 7] == UInt8(ascii: "u"), let low = hex4(at: index + 8),
                        (0xDC00..<0xE000).contains(low)
                    else { return false }
                    pairedLow = index + 6
                    return true
                }
                return !(0xDC00..<0xE000).contains(code)
            default:
                return false
            }
        }

        /// Four hexadecimal digits at `index`.
        func hex4(at index: Int) -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for offset in 0..<4 {
                let byte = bytes[index + offset]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        mutating func number() throws(EnclaveError) {
            let start = position
            func isDigit(_ index: Int) -> Bool {
                index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard isDigit(position) else { throw fail("invalid value") }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                while isDigit(position) { position += 1 }
            }
            var integral = true
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                integral = false
                position += 1
                let digits = position
                while isDigit(position) { position += 1 }
                guard position > digits else { throw fail("invalid number") }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                integral = false
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
                {
                    position += 1
                }
                let digits = position
                while isDigit(position) { position += 1 }
                guard position > digits else { throw fail("invalid number") }
            }
            // Up to 15 digits: exact in an Int and within ±2^53; read without making a string.
            if integral, position - start <= 15 {
                var value = 0
                var negative = false
                for index in start..<position {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "-") {
                        negative = true
                    } else {
                        value = value * 10 + Int(byte - UInt8(ascii: "0"))
                    }
                }
                append(.integer, start, position, value: negative ? -value : value)
                return
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            // `magnitude`, not `abs`: abs(Int.min) traps.
            if integral, let value = Int(text), value.magnitude <= 1 << 53 {
                append(.integer, start, position, value: value)
                return
            }
            guard let value = Double(text), value.isFinite else { throw fail("number out of range") }
            append(.double, start, position, value: Int(bitPattern: UInt(value.bitPattern)))
        }
    }
}
