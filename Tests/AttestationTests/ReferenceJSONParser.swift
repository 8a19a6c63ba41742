import EnclaveCore

@testable import Attestation

/// The tree reader `JSONTape` replaced (the shipping parser until the tape), kept as the differential tests'
/// reference: `JSONTapeTests` hold the tape (and `JSONValue`, now built from it) to this reader's acceptance, values
/// and error messages on real collateral and on mutations of it.
struct ReferenceJSONParser {
    let bytes: [UInt8]
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

    mutating func value(depth: Int) throws(EnclaveError) -> JSONValue {
        guard depth < JSONValue.maxDepth else { throw fail("nesting deeper than \(JSONValue.maxDepth)") }
        guard position < bytes.count else { throw fail("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
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

    mutating func literal(_ word: StaticString) throws(EnclaveError) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("unexpected end") }
        for index in 0..<count where bytes[position + index] != word.utf8Start[index] {
            throw fail("invalid literal")
        }
        position += count
    }

    mutating func object(depth: Int) throws(EnclaveError) -> JSONValue {
        position += 1
        var members: [(key: JSONString, value: JSONValue)] = []
        var keys: Set<String> = []  // used once an object grows large
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
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            position += 1
            skipWhitespace()
            let member = try value(depth: depth + 1)
            let duplicate: Bool
            if members.count < 16 {
                // The same key as Swift strings judge it (canonically equivalent spellings too), as the large
                // objects' set does: what a `[String: …]` built from the object would merge.
                duplicate = members.contains { $0.key.decoded() == key.decoded() }
            } else {
                if keys.isEmpty { keys = Set(members.compactMap { $0.key.decoded() }) }
                duplicate = !keys.insert(key.decoded() ?? "").inserted
            }
            guard !duplicate else { throw fail("duplicate key \"\(key.decoded() ?? "")\"") }
            members.append((key, member))
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

    mutating func array(depth: Int) throws(EnclaveError) -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
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

    /// A string token, left undecoded: its raw bytes between the quotes, checked (UTF-8, escapes, no control
    /// characters) but only turned into a `String` when read.
    mutating func string() throws(EnclaveError) -> JSONString {
        position += 1  // the opening quote
        let start = position
        var escaped = false
        var ascii = true
        var control = false
        // The closing quote, scanned over the buffer (a bundle's strings run to kilobytes).
        let end = bytes.withUnsafeBufferPointer { buffer -> Int? in
            var index = start
            while index < buffer.count {
                let byte = buffer[index]
                if byte == UInt8(ascii: "\"") { return index }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    index += 2  // the escape's first character; \u digits are checked when decoded
                    continue
                }
                if byte < 0x20 {
                    control = true
                    return index
                }
                if byte >= 0x80 { ascii = false }
                index += 1
            }
            return nil
        }
        guard let end else {
            position = bytes.count
            throw fail("unterminated string")
        }
        position = end
        guard !control else { throw fail("control character in a string") }
        let token = JSONString(raw: bytes[start..<end], escaped: escaped)
        position += 1
        // Checked here, decoded when read (a collateral bundle's long escaped strings, once).
        guard token.isWellFormed(ascii: ascii) else { throw fail("invalid string") }
        return token
    }

    mutating func number() throws(EnclaveError) -> JSONValue {
        let start = position
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else {
            throw fail("invalid value")
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
        }
        var integral = true
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            integral = false
            position += 1
            let digits = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            guard position > digits else { throw fail("invalid number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            integral = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            let digits = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            guard position > digits else { throw fail("invalid number") }
        }
        // Up to 15 digits: exact in an Int and within ±2^53; read without making a string.
        if integral, position - start <= 15 {
            var value = 0
            var negative = false
            for byte in bytes[start..<position] {
                if byte == UInt8(ascii: "-") {
                    negative = true
                } else {
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                }
            }
            return .integer(negative ? -value : value)
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        // `magnitude`, not `abs`: abs(Int.min) traps.
        if integral, let value = Int(text), value.magnitude <= 1 << 53 { return .integer(value) }
        guard let value = Double(text), value.isFinite else { throw fail("number out of range") }
        return .double(value)
    }
}

extension ReferenceJSONParser {
    /// Parse exactly one JSON value from `bytes`, as `JSONValue(parsing:)` did before the tape.
    static func parse(_ bytes: [UInt8]) throws(EnclaveError) -> JSONValue {
        var parser = ReferenceJSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw .malformedInput("JSON: trailing bytes at offset \(parser.position)")
        }
        return value
    }
}
