/// A JSON string token: the raw bytes between its quotes, validated at parse time (by `JSONTape`), decoded on
/// demand.
package struct JSONString: Hashable, Sendable {
    package let raw: ArraySlice<UInt8>
    package let escaped: Bool

    package init(raw: ArraySlice<UInt8>, escaped: Bool) {
        self.raw = raw
        self.escaped = escaped
    }

    /// Whether the string is exactly `text`, byte for byte in UTF-8 (not Swift's `==`, under which a canonically
    /// equivalent spelling, KELVIN SIGN for "K", would stand in for a member's name).
    package func equals(_ text: String) -> Bool {
        guard escaped else { return raw.elementsEqual(text.utf8) }
        guard let value = decoded() else { return false }
        return value.utf8.elementsEqual(text.utf8)
    }

    package static func == (lhs: JSONString, rhs: JSONString) -> Bool {
        if !lhs.escaped && !rhs.escaped { return lhs.raw.elementsEqual(rhs.raw) }
        return lhs.decoded() == rhs.decoded()
    }

    package func hash(into hasher: inout Hasher) { hasher.combine(decoded()) }

    /// Whether ``decoded()`` gives a value, without making it: for a string of ASCII bytes only its escapes can be
    /// malformed (what they decode to is valid UTF-8), so no output is built; any other is decoded.
    package func isWellFormed(ascii: Bool) -> Bool {
        guard ascii else { return decoded() != nil }
        guard escaped else { return true }
        return raw.withUnsafeBufferPointer { Self.decodedBytes($0, write: false) } != nil
    }

    /// The string's value; `nil` if its bytes are not valid UTF-8 or its escapes are malformed.
    package func decoded() -> String? {
        raw.withUnsafeBufferPointer { Self.decoded($0, escaped: escaped) }
    }

    /// The value of the string whose raw bytes (between the quotes) are `raw`; `nil` if they are not valid UTF-8 or
    /// an escape is malformed.
    package static func decoded(_ raw: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String? {
        guard escaped else { return string(raw) }
        guard let output = decodedBytes(raw, write: true) else { return nil }
        return output.withUnsafeBufferPointer { string($0) }
    }

    /// `String(validating:as:)` over the bytes' buffer (on an `ArraySlice` it ran unspecialized, looking up generic
    /// metadata on every call); ASCII, the common case, needs no validation.
    private static func string(_ buffer: UnsafeBufferPointer<UInt8>) -> String? {
        var any: UInt8 = 0
        for byte in buffer { any |= byte }
        return any < 0x80
            ? String(decoding: buffer, as: UTF8.self) : String(validating: buffer, as: UTF8.self)
    }

    /// Appends `text` as a JSON string literal: `"` and `\` escaped, the control characters as `\b`, `\t`, `\n`,
    /// `\f`, `\r` or else `\u00xx` (lower-case hex), everything else (slashes, non-ASCII) as is. `JSONEncoder`
    /// writes these escapes (the key broker's token text) and the clean room's canonical encoding is defined by them.
    package static func write(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0..<0x20:
                let hex: StaticString = "0123456789abcdef"
                output.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                ])
                output.append(hex.utf8Start[Int(byte >> 4)])
                output.append(hex.utf8Start[Int(byte & 0x0F)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// The UTF-8 bytes of `decoded()`, without making a `String`; `nil` exactly when `decoded()` is.
    package func decodedUTF8() -> [UInt8]? {
        let output: [UInt8]
        if escaped {
            guard let bytes = raw.withUnsafeBufferPointer({ Self.decodedBytes($0, write: true) }) else {
                return nil
            }
            output = bytes
        } else {
            output = Array(raw)
        }
        let ascii = output.withUnsafeBufferPointer { buffer in
            var any: UInt8 = 0
            for byte in buffer { any |= byte }
            return any < 0x80
        }
        guard ascii || String(validating: output, as: UTF8.self) != nil else { return nil }
        return output
    }

    /// The UTF-8 bytes the escapes in `input` stand for (nothing is written when not `write`: the escapes are only
    /// checked); `nil` when an escape is malformed. One pass over the raw bytes, writing into a buffer of their size
    /// (an escape never decodes to more bytes than it takes). The bytes between escapes are copied, not validated.
    package static func decodedBytes(_ input: UnsafeBufferPointer<UInt8>, write: Bool) -> [UInt8]? {
        var valid = true
        let output = {
            [UInt8](unsafeUninitializedCapacity: write ? input.count : 0) { out, written in
                written = 0
                var index = 0
                var count = 0
                func hex4() -> UInt32? {
                    guard input.count - index >= 4 else { return nil }
                    var value: UInt32 = 0
                    for _ in 0..<4 {
                        let byte = input[index]
                        let digit: UInt8
                        switch byte {
                        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                        default: return nil
                        }
                        value = value << 4 | UInt32(digit)
                        index += 1
                    }
                    return value
                }
                while index < input.count {
                    // The bytes up to the next escape, copied at once.
                    var run = index
                    if let base = input.baseAddress {
                        // Eight bytes at a time while none is a backslash.
                        while run + 8 <= input.count {
                            let word =
                                UnsafeRawPointer(base + run).loadUnaligned(as: UInt64.self) ^ 0x5C5C_5C5C_5C5C_5C5C
                            if (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080 != 0 { break }
                            run += 8
                        }
                    }
                    while run < input.count, input[run] != UInt8(ascii: "\\") { run += 1 }
                    if write, run > index, let source = input.baseAddress, let target = out.baseAddress {
                        (target + count).update(from: source + index, count: run - index)
                        count += run - index
                    }
                    index = run
                    guard index < input.count else { break }
                    index += 1  // the backslash
                    guard index < input.count else {
                        valid = false
                        return
                    }
                    let escape = input[index]
                    index += 1
                    var code: UInt32
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): code = UInt32(escape)
                    case UInt8(ascii: "b"): code = 0x08
                    case UInt8(ascii: "f"): code = 0x0C
                    case UInt8(ascii: "n"): code = 0x0A
                    case UInt8(ascii: "r"): code = 0x0D
                    case UInt8(ascii: "t"): code = 0x09
                    case UInt8(ascii: "u"):
                        guard let unit = hex4() else {
                            valid = false
                            return
                        }
                        code = unit
                        if (0xD800..<0xDC00).contains(code) {
                            guard input.count - index >= 2, input[index] == UInt8(ascii: "\\"),
                                input[index + 1] == UInt8(ascii: "u")
                            else {
                                valid = false
                                return
                            }
                            index += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else {
                                valid = false
                                return
                            }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(code) {
                            valid = false
                            return
                        }
                    default:
                        valid = false
                        return
                    }
                    guard write else { continue }
                    // 1 to 4 UTF-8 bytes for a 2-, 6- or 12-byte escape.
                    switch code {
                    case 0..<0x80:
                        out[count] = UInt8(code)
                        count += 1
                    case 0x80..<0x800:
                        out[count] = UInt8(0xC0 | code >> 6)
                        out[count + 1] = UInt8(0x80 | code & 0x3F)
                        count += 2
                    case 0x800..<0x10000:
                        out[count] = UInt8(0xE0 | code >> 12)
                        out[count + 1] = UInt8(0x80 | code >> 6 & 0x3F)
                        out[count + 2] = UInt8(0x80 | code & 0x3F)
                        count += 3
                    default:
                        out[count] = UInt8(0xF0 | code >> 18)
                        out[count + 1] = UInt8(0x80 | code >> 12 & 0x3F)
                        out[count + 2] = UInt8(0x80 | code >> 6 & 0x3F)
                        out[count + 3] = UInt8(0x80 | code & 0x3F)
                        count += 4
                    }
                }
                written = count
            }
        }()
        return valid ? output : nil
    }
}
