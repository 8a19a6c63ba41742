import EnclaveCore
import Foundation
import Testing

/// The codec's shortcuts for known types (Empty, String, fixed-width integers, Bool, Double) and its in-place
/// field lookup must write exactly the bytes of the general `Codable` path and refuse exactly what it refuses.
@Suite("Binary codec shortcuts")
struct BinaryCodecShortcutTests {
    let encoder = BinaryEncoder()
    let decoder = BinaryDecoder()

    /// Encodes `value` both ways, checks the bytes are identical and that both decoders return the value.
    private func checkSame<T: Codable & Equatable>(
        _ value: T,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let fast = try encoder.encode(value)
        let general = try encoder.encodeWithoutShortcuts(value)
        #expect(fast == general, "\(T.self) \(value)", sourceLocation: sourceLocation)
        #expect(try decoder.decode(T.self, from: general) == value, sourceLocation: sourceLocation)
        #expect(try decoder.decodeWithoutShortcuts(T.self, from: fast) == value, sourceLocation: sourceLocation)
    }

    /// Both decoders must refuse `bytes` as `T` with `malformedInput`.
    private func checkRefused<T: Decodable>(
        _ type: T.Type,
        _ bytes: [UInt8],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(throws: EnclaveError.malformedInput(""), "\(T.self) \(bytes)", sourceLocation: sourceLocation) {
            try decoder.decode(type, from: bytes)
        }
        #expect(throws: EnclaveError.malformedInput(""), "\(T.self) \(bytes)", sourceLocation: sourceLocation) {
            try decoder.decodeWithoutShortcuts(type, from: bytes)
        }
    }

    @Test func knownTypesEncodeAsTheGeneralPathDoes() throws {
        try checkSame(Empty())
        for value in [Int.min, -1, 0, 1, 63, 64, -64, -65, 1 << 40, Int.max] { try checkSame(value) }
        for value in [Int64.min, -1, 0, Int64.max] { try checkSame(value) }
        for value in [Int32.min, -1, 0, 300, Int32.max] { try checkSame(value) }
        for value in [UInt64.min, 127, 128, 16_383, 16_384, UInt64.max] { try checkSame(value) }
        for value in [UInt32.min, 127, 128, UInt32.max] { try checkSame(value) }
        for value in [UInt.min, 1, UInt.max] { try checkSame(value) }
        for value in [UInt8.min, 1, 127, 128, UInt8.max] { try checkSame(value) }
        try checkSame(true)
        try checkSame(false)
        for value in [0.0, -0.0, 1.5, -.infinity, .infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude] {
            try checkSame(value)
        }
        // NaN is not equal to itself: compare the bytes and the decoded bit pattern.
        let nan = Double(nan: 0x1234, signaling: false)
        #expect(try encoder.encode(nan) == encoder.encodeWithoutShortcuts(nan))
        #expect(try decoder.decode(Double.self, from: encoder.encode(nan)).bitPattern == nan.bitPattern)
        let longString = String(repeating: "é", count: 200)  // 400 UTF-8 bytes: a two-byte length
        for value in ["", "a", "Grüße 👋", "nul\u{0}inside", longString] { try checkSame(value) }
    }

    @Test func knownTypesInsideContainersEncodeAsTheGeneralPathDoes() throws {
        try checkSame(BinaryCodecTests.sample)
        try checkSame([Empty(), Empty()])
        try checkSame(["a": Empty()])
        try checkSame([Int?.none, 5, Int.min])
        try checkSame(["x": "y", "": "empty key", "é": String(repeating: "z", count: 300)])
        let emptyBytes = try encoder.encode(Empty())
        #expect(emptyBytes == [1, 0])
    }

    /// Keys written out of order, or more than the linear-scan limit of them, still come out sorted, one encoding
    /// per value; and a dictionary decoded through the hashed lookup round-trips.
    @Test func fieldOrderIsCanonicalWhateverTheWriteOrder() throws {
        struct Reversed: Encodable {
            var count: Int
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyKey.self)
                for index in (0..<count).reversed() { try container.encode(index, forKey: AnyKey("k\(index)")) }
            }
        }
        struct Ordered: Encodable {
            var count: Int
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyKey.self)
                let keys = (0..<count).map { "k\($0)" }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                for key in keys { try container.encode(Int(key.dropFirst())!, forKey: AnyKey(key)) }
            }
        }
        for count in [0, 1, 2, 16, 17, 200] {
            let reversed = try encoder.encode(Reversed(count: count))
            #expect(reversed == (try encoder.encode(Ordered(count: count))), "\(count) fields")
            #expect(reversed == (try encoder.encodeWithoutShortcuts(Reversed(count: count))), "\(count) fields")
            let map = try decoder.decode([String: Int].self, from: reversed)
            #expect(map.count == count)
            #expect(map.allSatisfy { "k\($0.value)" == $0.key })
        }
        // A key written twice keeps its last value, at the first key's position.
        struct Twice: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyKey.self)
                try container.encode(1, forKey: AnyKey("b"))
                try container.encode(2, forKey: AnyKey("a"))
                try container.encode(3, forKey: AnyKey("b"))
            }
        }
        #expect(try decoder.decode([String: Int].self, from: encoder.encode(Twice())) == ["a": 2, "b": 3])
    }

    @Test func duplicateFieldsAreRefusedOnBothLookupPaths() throws {
        for count in [2, 17, 40] {
            // `count` fields whose last one repeats the first name.
            var bytes: [UInt8] = [1]
            Varint.append(UInt64(count), to: &bytes)
            for index in 0..<count {
                let name = Array("f\(index == count - 1 ? 0 : index)".utf8)
                bytes += [UInt8(name.count)] + name + [2, 1, 2]
            }
            checkRefused([String: Int].self, bytes)
            var unique = bytes
            unique[unique.count - 4] = UInt8(ascii: "x")  // the last field renamed "fx": accepted
            #expect(try decoder.decode([String: Int].self, from: unique).count == count, "\(count) fields")
        }
    }

    @Test func truncatedInputIsRefusedByTheShortcuts() throws {
        let values: [(String, [UInt8])] = try [
            ("Empty", encoder.encode(Empty())),
            ("String", encoder.encode("Grüße 👋")),
            ("Int", encoder.encode(Int.min)),
            ("UInt64", encoder.encode(UInt64.max)),
            ("Int64", encoder.encode(Int64.min)),
            ("UInt32", encoder.encode(UInt32.max)),
            ("Int32", encoder.encode(Int32.min)),
            ("UInt", encoder.encode(UInt.max)),
            ("Bool", encoder.encode(true)),
            ("UInt8", encoder.encode(UInt8.max)),
            ("Double", encoder.encode(1.5)),
        ]
        for (name, bytes) in values {
            for length in 0..<bytes.count {
                let prefix = Array(bytes.prefix(length))
                switch name {
                case "Empty": checkRefused(Empty.self, prefix)
                case "String": checkRefused(String.self, prefix)
                case "Int": checkRefused(Int.self, prefix)
                case "UInt64": checkRefused(UInt64.self, prefix)
                case "Int64": checkRefused(Int64.self, prefix)
                case "UInt32": checkRefused(UInt32.self, prefix)
                case "Int32": checkRefused(Int32.self, prefix)
                case "UInt": checkRefused(UInt.self, prefix)
                case "Bool": checkRefused(Bool.self, prefix)
                case "UInt8": checkRefused(UInt8.self, prefix)
                default: checkRefused(Double.self, prefix)
                }
            }
        }
    }

    @Test func trailingBytesAreRefusedByTheShortcuts() throws {
        checkRefused(Empty.self, [1, 0, 0])
        checkRefused(String.self, try encoder.encode("abc") + [0])
        checkRefused(Int.self, try encoder.encode(5) + [0])
        checkRefused(UInt64.self, try encoder.encode(UInt64(5)) + [1])
        checkRefused(Int32.self, try encoder.encode(Int32(-5)) + [1])
        checkRefused(Bool.self, [1, 1, 0])
        checkRefused(UInt8.self, [1, 7, 7])
        checkRefused(Double.self, try encoder.encode(2.0) + [0])
        checkRefused([UInt8].self, try encoder.encode([UInt8](repeating: 1, count: 4096)) + [0])
        // A nil slot with bytes after its presence byte.
        checkRefused(String?.self, [0, 0])
    }

    @Test func oversizedLengthsAndBadValuesAreRefusedByTheShortcuts() throws {
        // String lengths past the end: by one byte, and absurd.
        checkRefused(String.self, [1, 4, 0x61, 0x62, 0x63])
        var huge: [UInt8] = [1]
        Varint.append(1 << 62, to: &huge)
        checkRefused(String.self, huge + [0x61])
        checkRefused([UInt8].self, huge + [0x61])
        // Invalid UTF-8, a bad presence byte, nil where a value is required, an empty slot.
        checkRefused(String.self, [1, 2, 0xC3, 0x28])
        checkRefused(Int.self, [2, 0])
        checkRefused(Int.self, [0])
        checkRefused(Empty.self, [0])
        checkRefused(Empty.self, [])
        checkRefused(Empty.self, [2, 0])
        // Out of range for the type, non-minimal and overlong varints, a boolean that is not 0 or 1.
        checkRefused(Int32.self, try encoder.encode(Int64(Int32.max) + 1))
        checkRefused(UInt32.self, try encoder.encode(UInt64(UInt32.max) + 1))
        checkRefused(UInt64.self, [1, 0x80, 0x00])
        checkRefused(UInt64.self, [1] + [UInt8](repeating: 0xFF, count: 10) + [1])
        checkRefused(Bool.self, [1, 2])
        checkRefused(Double.self, [1, 0, 0, 0, 0, 0, 0, 0])
    }

    /// `Empty`'s own `init(from:)` reads nothing, so the decoder used to accept any bytes as an `Empty` (nil,
    /// truncated, trailing data, unknown fields): now only its one encoding, [1, 0], on both paths and nested too.
    @Test func emptyIsOnlyItsOneEncoding() throws {
        checkRefused(Empty.self, [1, 1, 1, UInt8(ascii: "a"), 2, 1, 2])
        checkRefused(Empty.self, [1, 0, 0])
        checkRefused(Empty.self, [1])
        checkRefused(Empty.self, [0])
        checkRefused(Empty.self, [])
        checkRefused([Empty].self, [1, 1, 2, 1, 1])
        checkRefused([String: Empty].self, [1, 1, 1, UInt8(ascii: "a"), 1, 0])
        #expect(try decoder.decode([Empty].self, from: encoder.encode([Empty(), Empty()])).count == 2)
        #expect(try decoder.decodeWithoutShortcuts(Empty.self, from: [1, 0]) == Empty())
    }

    /// Coding paths are built on demand now; errors must still name where they happened.
    @Test func errorsStillCarryTheirCodingPath() throws {
        struct Needs: Codable { var required: Int }
        struct Has: Codable { var other: Int }
        struct Outer<Element: Codable>: Codable { var items: [Element] }
        let bytes = try encoder.encode(Outer(items: [Has(other: 1)]))
        do {
            _ = try decoder.decode(Outer<Needs>.self, from: bytes)
            Issue.record("a missing field decoded")
        } catch DecodingError.keyNotFound(let key, let context) {
            #expect(key.stringValue == "required")
            #expect(context.codingPath.map(\.stringValue) == ["items", "0"])
        }
        struct Failing: Encodable {
            func encode(to encoder: any Encoder) throws {
                throw EncodingError.invalidValue(0, .init(codingPath: encoder.codingPath, debugDescription: "no"))
            }
        }
        do {
            _ = try encoder.encode([["k": [Failing()]]])
            Issue.record("a failing value encoded")
        } catch EncodingError.invalidValue(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["0", "k", "0"])
        }
    }
}

/// A coding key with any name.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
