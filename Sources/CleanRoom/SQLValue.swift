/// A typed value: a cell of a data set, a query parameter or a result cell.
public enum SQLValue: Hashable, Sendable, CustomStringConvertible {
    /// No value (an empty CSV cell, SQL NULL).
    case null
    /// A 64-bit integer.
    case integer(Int64)
    /// A finite double.
    case real(Double)
    /// UTF-8 text (dates are text `YYYY-MM-DD`).
    case text(String)

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let value): return String(value)
        case .real(let value): return String(value)
        case .text(let value): return value
        }
    }

    /// Whether the value fits `type` (NULL fits every type).
    public func fits(_ type: Contract.ValueType) -> Bool {
        switch (self, type) {
        case (.null, _), (.integer, .integer), (.real, .real), (.text, .text): return true
        case (.text(let text), .date): return Self.isDate(Array(text.utf8))
        default: return false
        }
    }

    /// Parse a CSV cell as `type`; nil when it does not fit. An empty unquoted cell is NULL.
    public static func parse(_ bytes: [UInt8], quoted: Bool, as type: Contract.ValueType) -> SQLValue? {
        if bytes.isEmpty, !quoted { return .null }
        switch type {
        case .text:
            return String(validating: bytes, as: UTF8.self).map(SQLValue.text)
        case .integer:
            guard bytes.count <= 20, let text = String(validating: bytes, as: UTF8.self),
                bytes.allSatisfy({ (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") }),
                let value = Int64(text)
            else { return nil }
            return .integer(value)
        case .real:
            guard bytes.count <= 64,
                bytes.allSatisfy({
                    (0x30...0x39).contains($0)
                        || [
                            UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                            UInt8(ascii: "e"), UInt8(ascii: "E"),
                        ].contains($0)
                }),
                let text = String(validating: bytes, as: UTF8.self), let value = Double(text), value.isFinite
            else { return nil }
            return .real(value)
        case .date:
            guard isDate(bytes), let text = String(validating: bytes, as: UTF8.self) else { return nil }
            return .text(text)
        }
    }

    /// `YYYY-MM-DD`, a real calendar day (proleptic Gregorian).
    static func isDate(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard (0x30...0x39).contains(bytes[index]) else { return nil }
                value = value * 10 + Int(bytes[index] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10) else { return false }
        guard (1...12).contains(month), day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= days[month - 1]
    }
}
