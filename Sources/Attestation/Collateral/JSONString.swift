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

    /// The string's value; `nil` if its bytes are not valid UTF-8 or its escapes are malformed.
    func decoded() -> String? {
        guard escaped else { return String(validating: raw, as: UTF8.self) }
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = raw.startIndex
        func hex4() -> UInt32? {
            guard raw.endIndex - index >= 4 else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = raw[index]
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
        while index < raw.endIndex {
            let byte = raw[index]
            index += 1
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                continue
            }
            guard index < raw.endIndex else { return nil }
            let escape = raw[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                guard var code = hex4() else { return nil }
                if (0xD800..<0xDC00).contains(code) {
                    guard raw.endIndex - index >= 2, raw[index] == UInt8(ascii: "\\"),
                        raw[index + 1] == UInt8(ascii: "u")
                    else { return nil }
                    index += 2
                    guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(code) {
                    return nil
                }
                guard let scalar = Unicode.Scalar(code) else { return nil }
                output.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                return nil
            }
        }
        return String(validating: output, as: UTF8.self)
    }
}
