/// The reading core of `JSONTape`: one pass over a buffer, appending a token per value (see `JSONTape` for what is
/// accepted). Every read is bounds-checked against `bytes.count`; the recursion is bounded by `Rules/maximumDepth`.
struct JSONTokenizer {
    typealias Token = JSONTape.Token
    typealias Failure = JSONTape.Failure

    let bytes: UnsafeBufferPointer<UInt8>
    let rules: JSONTape.Rules
    var tokens: [Token] = []
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>, rules: JSONTape.Rules) {
        self.bytes = bytes
        self.rules = rules
        tokens.reserveCapacity(bytes.count / 8 + 4)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    func fail(_ what: String, _ code: Failure.Code = .syntax) -> Failure {
        Failure(code: code, reason: what, offset: position, key: nil)
    }

    func tooDeep() -> Failure { fail("nesting deeper than \(rules.maximumDepth)", .nesting) }

    mutating func append(_ kind: JSONTape.Kind, _ start: Int, _ end: Int, value: Int = 0) {
        tokens.append(Token(kind: kind, start: start, end: end, next: tokens.count + 1, value: value))
    }

    mutating func value(depth: Int) throws(Failure) {
        if rules.scalarsNest, depth >= rules.maximumDepth { throw tooDeep() }
        guard position < bytes.count else { throw fail("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            guard depth < rules.maximumDepth else { throw tooDeep() }
            try object(depth: depth)
        case UInt8(ascii: "["):
            guard depth < rules.maximumDepth else { throw tooDeep() }
            try array(depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"):
            try literal("true")
            append(.bool, position - 4, position, value: 1)
        case UInt8(ascii: "f"):
            try literal("false")
            append(.bool, position - 5, position, value: 0)
        case UInt8(ascii: "n"):
            guard rules.allowsNull else {
                throw fail("null is not allowed (leave the member out)", .notAllowed)
            }
            try literal("null")
            append(.null, position - 4, position)
        default: try number()
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

    func raw(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[tokens[index].start..<tokens[index].end])
    }

    /// The key at token `index`, decoded (every key token was validated when it was read).
    func decodedKey(_ index: Int) -> String {
        JSONString.decoded(raw(index), escaped: tokens[index].kind == .escapedString) ?? ""
    }

    /// Whether the keys at tokens `key` and `other` are the same key: equal as Swift strings (canonical
    /// equivalence), which is what a `[String: …]` built from them would merge. Equal bytes are; two unescaped
    /// ASCII keys are only when their bytes are.
    func sameKey(_ key: Int, _ other: Int) -> Bool {
        let a = tokens[key]
        let b = tokens[other]
        if a.kind == .string && b.kind == .string {
            if JSONTape.equal(raw(key), raw(other)) { return true }
            if a.value == 0 && b.value == 0 { return false }
        }
        return decodedKey(key) == decodedKey(other)
    }

    mutating func object(depth: Int) throws(Failure) {
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
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw fail("expected ':'")
            }
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
                    keys.reserveCapacity(4 * count)
                    var other = open + 1
                    while other < key {
                        keys.insert(decodedKey(other))
                        other = tokens[other + 1].next
                    }
                }
                duplicate = !keys.insert(decodedKey(key)).inserted
            }
            guard !duplicate else {
                let name = decodedKey(key)
                throw Failure(
                    code: .duplicateKey,
                    reason: "duplicate key \"\(name)\"",
                    offset: position,
                    key: name
                )
            }
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

    mutating func array(depth: Int) throws(Failure) {
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
    mutating func string() throws(Failure) {
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
                if !badEscape, index != pairedLow {
                    badEscape = !validEscape(at: index, pairedLow: &pairedLow)
                }
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
        append(escaped ? .escapedString : .string, start, end, value: ascii ? 0 : 1)
        position += 1
        if !ascii {
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
            guard JSONString.decoded(raw, escaped: escaped) != nil else { throw fail("invalid string") }
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
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
            UInt8(ascii: "f"),
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

    mutating func number() throws(Failure) {
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
            guard !rules.integersOnly else { throw fail("only integers are allowed", .notAllowed) }
            integral = false
            position += 1
            let digits = position
            while isDigit(position) { position += 1 }
            guard position > digits else { throw fail("invalid number") }
        }
        if position < bytes.count,
            bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")
        {
            guard !rules.integersOnly else { throw fail("only integers are allowed", .notAllowed) }
            integral = false
            position += 1
            if position < bytes.count,
                bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
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
        let text = String(
            decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]),
            as: UTF8.self
        )
        if rules.integersOnly {
            guard let value = Int64(text) else { throw fail("integer out of range", .notAllowed) }
            append(.integer, start, position, value: Int(value))
            return
        }
        // `magnitude`, not `abs`: abs(Int.min) traps.
        if integral, let value = Int(text), value.magnitude <= 1 << 53 {
            append(.integer, start, position, value: value)
            return
        }
        guard let value = Double(text), value.isFinite else { throw fail("number out of range") }
        append(.double, start, position, value: Int(bitPattern: UInt(value.bitPattern)))
    }
}
