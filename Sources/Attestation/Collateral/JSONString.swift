/// A JSON string token: the raw bytes between its quotes, validated at parse time, decoded on demand.
struct JSONString: Hashable, Sendable {
    let raw: ArraySlice<UInt8>
    let escaped: Bool

    /// Whether the string is exactly `text`.
    func equals(_ text: String) -> Bool {
        escaped ? decoded() == text : raw.elementsEqual(text.utf8)
    }

    static func == (lhs: JSONString, rhs: JSONString) -> Bool {
        if !lhs.escaped && !rhs.escaped { return lhs.raw.elementsEqual(rhs.raw) }
        return lhs.decoded() == rhs.decoded()
    }

    func hash(into hasher: inout Hasher) { hasher.combine(decoded()) }

    /// Whether ``decoded()`` gives a value, without making it: for a string of ASCII bytes only its escapes can be
    /// malformed (what they decode to is valid UTF-8), so no output is built; any other is decoded.
    func isWellFormed(ascii: Bool) -> Bool {
        guard ascii else { return decoded() != nil }
        guard escaped else { return true }
        return decodedBytes(write: false) != nil
    }

    /// The string's value; `nil` if its bytes are not valid UTF-8 or its escapes are malformed.
    func decoded() -> String? {
        guard escaped else { return String(validating: raw, as: UTF8.self) }
        guard let output = decodedBytes(write: true) else { return nil }
        return String(validating: output, as: UTF8.self)
    }

    /// The UTF-8 bytes the escapes stand for (nothing is written when not `write`: the escapes are only checked);
    /// `nil` when an escape is malformed. One pass over the raw bytes, writing into a buffer of their size (an
    /// escape never decodes to more bytes than it takes).
    private func decodedBytes(write: Bool) -> [UInt8]? {
        var valid = true
        let output = raw.withUnsafeBufferPointer { input -> [UInt8] in
            [UInt8](unsafeUninitializedCapacity: write ? input.count : 0) { out, written in
                var index = 0
                var count = 0
                func emit(_ byte: UInt8) {
                    if write {
                        out[count] = byte
                        count += 1
                    }
                }
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
                func fail() {
                    valid = false
                    written = 0
                }
                while index < input.count {
                    let byte = input[index]
                    index += 1
                    guard byte == UInt8(ascii: "\\") else {
                        emit(byte)
                        continue
                    }
                    guard index < input.count else { return fail() }
                    let escape = input[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): emit(escape)
                    case UInt8(ascii: "b"): emit(0x08)
                    case UInt8(ascii: "f"): emit(0x0C)
                    case UInt8(ascii: "n"): emit(0x0A)
                    case UInt8(ascii: "r"): emit(0x0D)
                    case UInt8(ascii: "t"): emit(0x09)
                    case UInt8(ascii: "u"):
                        guard var code = hex4() else { return fail() }
                        if (0xD800..<0xDC00).contains(code) {
                            guard input.count - index >= 2, input[index] == UInt8(ascii: "\\"),
                                input[index + 1] == UInt8(ascii: "u")
                            else { return fail() }
                            index += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return fail() }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(code) {
                            return fail()
                        }
                        guard let scalar = Unicode.Scalar(code) else { return fail() }
                        // 1 to 4 UTF-8 bytes for a 6- or 12-byte escape.
                        for byte in String(Character(scalar)).utf8 { emit(byte) }
                    default:
                        return fail()
                    }
                }
                written = count
            }
        }
        return valid ? output : nil
    }
}
