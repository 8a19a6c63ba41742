public import Foundation

/// Decodes values written by ``BinaryEncoder``, treating the bytes as hostile.
///
/// Every length and count is checked against the bytes that remain before anything is allocated, every slot must
/// be consumed exactly (no trailing bytes anywhere), strings must be valid UTF-8, booleans 0 or 1, integers in
/// range and minimally encoded, keys unique, and nesting no deeper than ``maxDepth``.
public struct BinaryDecoder: Sendable {
    /// The largest message, in bytes, the decoder accepts.
    public var maxMessageSize: Int
    /// The deepest nesting of containers the decoder accepts.
    public var maxDepth: Int

    /// Create a decoder.
    /// - Parameters:
    ///   - maxMessageSize: the size limit for one encoded value (default 64 MiB).
    ///   - maxDepth: the nesting limit (default 64).
    public init(maxMessageSize: Int = 64 << 20, maxDepth: Int = 64) {
        self.maxMessageSize = maxMessageSize
        self.maxDepth = maxDepth
    }

    /// Decode a `T` from exactly `bytes`.
    /// - Throws: ``EnclaveError`` (`malformedInput` or `limitExceeded`) or a `DecodingError` raised by `T` itself.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: bytes[...])
    }

    /// Decode a `T` from exactly `bytes` (a slice of a larger buffer, decoded in place).
    /// - Throws: `EnclaveError` (`malformedInput` or `limitExceeded`) or a `DecodingError` raised by `T` itself.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: ArraySlice<UInt8>) throws -> T {
        try decode(type, from: bytes, shortcuts: true)
    }

    /// Decode without the shortcuts for known types: every value goes through its `Decodable` implementation
    /// (byte buffers excepted, which are one block either way). Tests compare the shortcuts with this.
    package func decodeWithoutShortcuts<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: bytes[...], shortcuts: false)
    }

    private func decode<T: Decodable>(_ type: T.Type, from bytes: ArraySlice<UInt8>, shortcuts: Bool) throws -> T {
        guard bytes.count <= maxMessageSize else {
            throw EnclaveError.limitExceeded(
                "message is \(bytes.count) bytes, over the \(maxMessageSize)-byte limit"
            )
        }
        if T.self == Empty.self {
            // Checked here as `BinaryInput.decodeSlot` checks it, without allocating the input.
            guard bytes.count == 2, bytes.first == 1, bytes.last == 0 else {
                throw EnclaveError.malformedInput("an empty value must be encoded as [1, 0], got \(bytes.count) bytes")
            }
            return unsafeBitCast(Empty(), to: T.self)
        }
        if T.self == [UInt8].self {
            // A byte buffer is one block either way: checked as `BinaryInput.blob` checks it, with one copy and
            // without allocating the input.
            return unsafeBitCast(Array(try Self.block(bytes)), to: T.self)
        }
        let input = BinaryInput(bytes: bytes, maxDepth: maxDepth, shortcuts: shortcuts)
        return try input.decodeSlot(type, range: bytes.startIndex..<bytes.endIndex, depth: 0, parent: nil, key: nil)
    }

    /// The bytes of a top-level byte buffer's slot (`bytes`, all of it): the same checks and errors as
    /// `BinaryInput.valueStart` then `BinaryInput.blob`.
    private static func block(_ bytes: ArraySlice<UInt8>) throws(EnclaveError) -> ArraySlice<UInt8> {
        guard let tag = bytes.first else { throw .malformedInput("empty slot") }
        switch tag {
        case 1: break
        case 0: throw .malformedInput("unexpected nil")
        default: throw .malformedInput("invalid presence byte \(tag)")
        }
        var position = bytes.startIndex + 1
        let count = try Varint.readByteLength(bytes, at: &position, end: bytes.endIndex)
        guard position + count == bytes.endIndex else {
            throw .malformedInput("byte block of \(count) bytes does not fill its \(bytes.count)-byte slot")
        }
        return bytes[position...]
    }

    /// Decode a `T` from exactly `data`.
    /// - Throws: `EnclaveError` (`malformedInput` or `limitExceeded`) or a `DecodingError` raised by `T` itself.
    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try decode(type, from: [UInt8](data))
    }
}

/// The bytes being decoded plus the parsing primitives over them.
final class BinaryInput {
    let bytes: ArraySlice<UInt8>
    let maxDepth: Int
    let shortcuts: Bool

    init(bytes: ArraySlice<UInt8>, maxDepth: Int, shortcuts: Bool = true) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.shortcuts = shortcuts
    }

    /// Decode the slot in `range` (presence byte + value) as a `T`.
    func decodeSlot<T: Decodable>(
        _ type: T.Type,
        range: Range<Int>,
        depth: Int,
        parent: SlotDecoder?,
        key: (any CodingKey)?
    ) throws
        -> T
    {
        // The types are identical, so reinterpreting is exact (and `as!` would convert element by element).
        if T.self == Data.self { return unsafeBitCast(Data(try blob(range)), to: T.self) }
        if T.self == [UInt8].self { return unsafeBitCast(Array(try blob(range)), to: T.self) }
        if T.self == Empty.self {
            // `Empty`'s own `init(from:)` reads nothing, so it would accept any bytes at all (nil, truncated,
            // trailing data): it is taken only in its one encoding, a keyed container with no fields.
            guard range.count == 2, bytes[range.lowerBound] == 1, bytes[range.lowerBound + 1] == 0 else {
                throw EnclaveError.malformedInput("an empty value must be encoded as [1, 0], got \(range.count) bytes")
            }
            return unsafeBitCast(Empty(), to: T.self)
        }
        if shortcuts, let value = try known(type, range) { return value }
        guard depth <= maxDepth else { throw EnclaveError.limitExceeded("value nests deeper than \(maxDepth) levels") }
        let decoder = SlotDecoder(input: self, range: range, depth: depth, parent: parent, key: key)
        return try T(from: decoder)
    }

    /// A value whose type's decoding is known here, read without going through its `Decodable` implementation
    /// with the same checks that implementation's single-value decode makes.
    @inline(__always)
    func known<T: Decodable>(_ type: T.Type, _ range: Range<Int>) throws(EnclaveError) -> T? {
        if T.self == String.self { return unsafeBitCast(try decodeString(range), to: T.self) }
        if T.self == Int.self {
            return unsafeBitCast(Int(try decodeSigned(range, min: Int64(Int.min), max: Int64(Int.max))), to: T.self)
        }
        if T.self == UInt64.self { return unsafeBitCast(try decodeUnsigned(range, max: .max), to: T.self) }
        if T.self == Int64.self { return unsafeBitCast(try decodeSigned(range, min: .min, max: .max), to: T.self) }
        if T.self == UInt32.self {
            return unsafeBitCast(UInt32(try decodeUnsigned(range, max: UInt64(UInt32.max))), to: T.self)
        }
        if T.self == Int32.self {
            return unsafeBitCast(
                Int32(try decodeSigned(range, min: Int64(Int32.min), max: Int64(Int32.max))),
                to: T.self
            )
        }
        if T.self == UInt.self {
            return unsafeBitCast(UInt(try decodeUnsigned(range, max: UInt64(UInt.max))), to: T.self)
        }
        if T.self == Bool.self { return unsafeBitCast(try decodeBool(range), to: T.self) }
        if T.self == UInt8.self { return unsafeBitCast(try decodeByte(range), to: T.self) }
        if T.self == Double.self { return unsafeBitCast(Double(bitPattern: try decodeFixed64(range)), to: T.self) }
        return nil
    }

    /// The payload of a length-prefixed byte block in a slot, which must fill the slot exactly.
    func blob(_ range: Range<Int>) throws(EnclaveError) -> ArraySlice<UInt8> {
        var position = try valueStart(range)
        let count = try Varint.readByteLength(bytes, at: &position, end: range.upperBound)
        guard position + count == range.upperBound else {
            throw .malformedInput("byte block of \(count) bytes does not fill its \(range.count)-byte slot")
        }
        return bytes[position..<range.upperBound]
    }

    /// Position after the presence byte of a non-nil slot.
    func valueStart(_ range: Range<Int>) throws(EnclaveError) -> Int {
        guard let tag = range.isEmpty ? nil : bytes[range.lowerBound] else {
            throw .malformedInput("empty slot")
        }
        switch tag {
        case 1: return range.lowerBound + 1
        case 0: throw .malformedInput("unexpected nil")
        default: throw .malformedInput("invalid presence byte \(tag)")
        }
    }

    func isNil(_ range: Range<Int>) throws(EnclaveError) -> Bool {
        guard !range.isEmpty else { throw .malformedInput("empty slot") }
        switch bytes[range.lowerBound] {
        case 0:
            guard range.count == 1 else { throw .malformedInput("nil slot carries \(range.count - 1) trailing bytes") }
            return true
        case 1: return false
        default: throw .malformedInput("invalid presence byte \(bytes[range.lowerBound])")
        }
    }

    // MARK: Primitives (each must fill its slot exactly)

    func finish(_ position: Int, _ range: Range<Int>) throws(EnclaveError) {
        guard position == range.upperBound else {
            throw .malformedInput("\(range.upperBound - position) trailing bytes after a value")
        }
    }

    func decodeUnsigned(_ range: Range<Int>, max: UInt64) throws(EnclaveError) -> UInt64 {
        var position = try valueStart(range)
        let value = try Varint.read(bytes, at: &position, end: range.upperBound)
        try finish(position, range)
        guard value <= max else { throw .malformedInput("integer \(value) out of range") }
        return value
    }

    func decodeSigned(_ range: Range<Int>, min: Int64, max: Int64) throws(EnclaveError) -> Int64 {
        var position = try valueStart(range)
        let raw = try Varint.read(bytes, at: &position, end: range.upperBound)
        try finish(position, range)
        let value = Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
        guard value >= min && value <= max else { throw .malformedInput("integer \(value) out of range") }
        return value
    }

    func decodeByte(_ range: Range<Int>) throws(EnclaveError) -> UInt8 {
        let position = try valueStart(range)
        guard position < range.upperBound else { throw .malformedInput("truncated byte") }
        try finish(position + 1, range)
        return bytes[position]
    }

    func decodeBool(_ range: Range<Int>) throws(EnclaveError) -> Bool {
        switch try decodeByte(range) {
        case 0: return false
        case 1: return true
        case let other: throw .malformedInput("invalid boolean \(other)")
        }
    }

    func decodeFixed64(_ range: Range<Int>) throws(EnclaveError) -> UInt64 {
        let position = try valueStart(range)
        guard range.upperBound - position >= 8 else { throw .malformedInput("truncated 64-bit value") }
        try finish(position + 8, range)
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        return value
    }

    func decodeFixed32(_ range: Range<Int>) throws(EnclaveError) -> UInt32 {
        let position = try valueStart(range)
        guard range.upperBound - position >= 4 else { throw .malformedInput("truncated 32-bit value") }
        try finish(position + 4, range)
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        return value
    }

    func decodeString(_ range: Range<Int>) throws(EnclaveError) -> String {
        let payload = try blob(range)
        guard let string = String(validating: payload, as: UTF8.self) else {
            throw .malformedInput("string is not valid UTF-8")
        }
        return string
    }

    // MARK: Containers

    /// How much to reserve for `count` entries announced by the input: the count is already no more than the
    /// remaining bytes can hold, but each entry takes 16 or more bytes in memory for 2 or 3 in the input, so a
    /// large count is reserved only as far as this bound and grows as entries actually parse.
    static func reservation(_ count: Int) -> Int { min(count, 1024) }

    /// Parse a keyed container filling the slot `range`: field count, then (key, length, slot) triples.
    func keyedFields(_ range: Range<Int>) throws(EnclaveError) -> KeyedFields {
        var position = try valueStart(range)
        let end = range.upperBound
        // Each field takes at least 3 bytes (key length, value length, presence byte).
        let count = try Varint.readLength(bytes, at: &position, end: end, limit: (end - position) / 3)
        var fields = KeyedFields()
        fields.entries.reserveCapacity(Self.reservation(count))
        let hashed = count > KeyedFields.linearLimit
        if hashed { fields.index = [String: Range<Int>](minimumCapacity: Self.reservation(count)) }
        for _ in 0..<count {
            let keyLength = try Varint.readByteLength(bytes, at: &position, end: end)
            let keyRange = position..<position + keyLength
            guard let key = String(validating: bytes[keyRange], as: UTF8.self) else {
                throw .malformedInput("field name is not valid UTF-8")
            }
            position += keyLength
            let valueLength = try Varint.readByteLength(bytes, at: &position, end: end)
            guard valueLength > 0 else { throw .malformedInput("empty field \"\(key)\"") }
            let valueRange = position..<position + valueLength
            let duplicate: Bool
            if hashed {
                duplicate = fields.index?.updateValue(valueRange, forKey: key) != nil
            } else {
                duplicate = fields.entries.contains { bytes[$0.key].elementsEqual(bytes[keyRange]) }
            }
            guard !duplicate else { throw .malformedInput("duplicate field \"\(key)\"") }
            fields.entries.append((keyRange, valueRange))
            position += valueLength
        }
        try finish(position, range)
        return fields
    }

    /// Parse an unkeyed container filling the slot `range`: count, then (length, slot) pairs.
    func unkeyedElements(_ range: Range<Int>) throws(EnclaveError) -> [Range<Int>] {
        var position = try valueStart(range)
        let end = range.upperBound
        let count = try Varint.readLength(bytes, at: &position, end: end, limit: (end - position) / 2)
        var elements = [Range<Int>]()
        elements.reserveCapacity(Self.reservation(count))
        for _ in 0..<count {
            let length = try Varint.readByteLength(bytes, at: &position, end: end)
            guard length > 0 else { throw .malformedInput("empty element") }
            elements.append(position..<position + length)
            position += length
        }
        try finish(position, range)
        return elements
    }
}

/// A keyed container's fields as byte ranges of the input: names are compared in place (a linear scan for the
/// few fields of a struct), and hashed only for containers with many fields (dictionaries).
struct KeyedFields {
    /// Up to this many fields, a name is found by comparing bytes; more are hashed once.
    static let linearLimit = 16

    var entries: [(key: Range<Int>, value: Range<Int>)] = []
    var index: [String: Range<Int>]?

    func range(for key: String, in bytes: ArraySlice<UInt8>) -> Range<Int>? {
        if let index { return index[key] }
        let utf8 = key.utf8
        for entry in entries where entry.key.count == utf8.count && bytes[entry.key].elementsEqual(utf8) {
            return entry.value
        }
        return nil
    }
}

/// The `Decoder` handed to `Decodable` implementations: it reads one slot.
///
/// The coding path is kept as a parent link and a key, and built only when someone asks for it.
final class SlotDecoder: Decoder {
    let input: BinaryInput
    let range: Range<Int>
    let depth: Int
    let parent: SlotDecoder?
    let key: (any CodingKey)?
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var current: SlotDecoder? = self
        while let decoder = current {
            if let key = decoder.key { path.append(key) }
            current = decoder.parent
        }
        return path.reversed()
    }

    init(input: BinaryInput, range: Range<Int>, depth: Int, parent: SlotDecoder?, key: (any CodingKey)?) {
        self.input = input
        self.range = range
        self.depth = depth
        self.parent = parent
        self.key = key
    }

    /// Decode a child slot; `key` extends the coding path (nil for a single-value container's value).
    func decodeChild<T: Decodable>(_ type: T.Type, range: Range<Int>, key: (any CodingKey)?) throws -> T {
        if key == nil {
            return try input.decodeSlot(type, range: range, depth: depth + 1, parent: parent, key: self.key)
        }
        return try input.decodeSlot(type, range: range, depth: depth + 1, parent: self, key: key)
    }

    /// A decoder for a nested container's slot.
    func child(_ range: Range<Int>, key: (any CodingKey)?) throws -> SlotDecoder {
        guard depth < input.maxDepth else {
            throw EnclaveError.limitExceeded("value nests deeper than \(input.maxDepth) levels")
        }
        if key == nil {
            return SlotDecoder(input: input, range: range, depth: depth + 1, parent: parent, key: self.key)
        }
        return SlotDecoder(input: input, range: range, depth: depth + 1, parent: self, key: key)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(KeyedSlotContainer<Key>(decoder: self, fields: try input.keyedFields(range)))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        UnkeyedSlotContainer(decoder: self, elements: try input.unkeyedElements(range))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleSlotContainer(decoder: self) }
}

/// Decodes each primitive type from one slot; shared by the three container kinds.
private struct SlotReader {
    let input: BinaryInput

    func decode(_: Bool.Type, _ range: Range<Int>) throws -> Bool { try input.decodeBool(range) }
    func decode(_: String.Type, _ range: Range<Int>) throws -> String { try input.decodeString(range) }
    func decode(_: Double.Type, _ range: Range<Int>) throws -> Double {
        Double(bitPattern: try input.decodeFixed64(range))
    }
    func decode(_: Float.Type, _ range: Range<Int>) throws -> Float {
        Float(bitPattern: try input.decodeFixed32(range))
    }
    func decode(_: Int8.Type, _ range: Range<Int>) throws -> Int8 { Int8(bitPattern: try input.decodeByte(range)) }
    func decode(_: UInt8.Type, _ range: Range<Int>) throws -> UInt8 { try input.decodeByte(range) }
    func signed<I: FixedWidthInteger & SignedInteger>(_: I.Type, _ range: Range<Int>) throws -> I {
        I(try input.decodeSigned(range, min: Int64(I.min), max: Int64(I.max)))
    }
    func unsigned<I: FixedWidthInteger & UnsignedInteger>(_: I.Type, _ range: Range<Int>) throws -> I {
        I(try input.decodeUnsigned(range, max: UInt64(I.max)))
    }
}

private struct KeyedSlotContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: SlotDecoder
    let fields: KeyedFields
    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] {
        let bytes = decoder.input.bytes
        return fields.entries.compactMap { Key(stringValue: String(decoding: bytes[$0.key], as: UTF8.self)) }
    }
    private var reader: SlotReader { SlotReader(input: decoder.input) }

    init(decoder: SlotDecoder, fields: KeyedFields) {
        self.decoder = decoder
        self.fields = fields
    }

    private func lookup(_ name: String) -> Range<Int>? { fields.range(for: name, in: decoder.input.bytes) }

    func contains(_ key: Key) -> Bool { lookup(key.stringValue) != nil }

    private func range(_ key: Key) throws -> Range<Int> {
        guard let range = lookup(key.stringValue) else {
            throw DecodingError.keyNotFound(
                key,
                .init(codingPath: codingPath, debugDescription: "no field \"\(key.stringValue)\"")
            )
        }
        return range
    }

    func decodeNil(forKey key: Key) throws -> Bool { try decoder.input.isNil(range(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try reader.decode(type, range(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try reader.decode(type, range(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try reader.decode(type, range(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try reader.decode(type, range(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try reader.signed(type, range(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try reader.decode(type, range(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try reader.signed(type, range(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try reader.signed(type, range(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try reader.signed(type, range(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try reader.unsigned(type, range(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try reader.decode(type, range(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try reader.unsigned(type, range(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try reader.unsigned(type, range(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try reader.unsigned(type, range(key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decoder.decodeChild(type, range: range(key), key: key)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try nestedDecoder(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try nestedDecoder(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        guard let range = lookup("super") else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "no super field"))
        }
        return try decoder.child(range, key: nil)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder { try nestedDecoder(key) }

    private func nestedDecoder(_ key: Key) throws -> SlotDecoder { try decoder.child(range(key), key: key) }
}

private struct UnkeyedIndex: CodingKey {
    var stringValue: String { "\(intValue ?? 0)" }
    var intValue: Int?
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

private struct UnkeyedSlotContainer: UnkeyedDecodingContainer {
    let decoder: SlotDecoder
    let elements: [Range<Int>]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }
    private var reader: SlotReader { SlotReader(input: decoder.input) }

    init(decoder: SlotDecoder, elements: [Range<Int>]) {
        self.decoder = decoder
        self.elements = elements
    }

    private mutating func next() throws -> Range<Int> {
        guard currentIndex < elements.count else {
            throw DecodingError.valueNotFound(
                Any.self,
                .init(codingPath: codingPath, debugDescription: "unkeyed container is at its end")
            )
        }
        defer { currentIndex += 1 }
        return elements[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard currentIndex < elements.count else { return false }
        if try decoder.input.isNil(elements[currentIndex]) {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try reader.decode(type, next()) }
    mutating func decode(_ type: String.Type) throws -> String { try reader.decode(type, next()) }
    mutating func decode(_ type: Double.Type) throws -> Double { try reader.decode(type, next()) }
    mutating func decode(_ type: Float.Type) throws -> Float { try reader.decode(type, next()) }
    mutating func decode(_ type: Int.Type) throws -> Int { try reader.signed(type, next()) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try reader.decode(type, next()) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try reader.signed(type, next()) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try reader.signed(type, next()) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try reader.signed(type, next()) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try reader.unsigned(type, next()) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try reader.decode(type, next()) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try reader.unsigned(type, next()) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try reader.unsigned(type, next()) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try reader.unsigned(type, next()) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let key = UnkeyedIndex(currentIndex)
        return try decoder.decodeChild(type, range: next(), key: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try nestedDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try nestedDecoder().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try nestedDecoder() }

    private mutating func nestedDecoder() throws -> SlotDecoder {
        guard decoder.depth < decoder.input.maxDepth else {
            throw EnclaveError.limitExceeded("value nests deeper than \(decoder.input.maxDepth) levels")
        }
        let key = UnkeyedIndex(currentIndex)
        return try decoder.child(try next(), key: key)
    }
}

private struct SingleSlotContainer: SingleValueDecodingContainer {
    let decoder: SlotDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }
    private var range: Range<Int> { decoder.range }
    private var reader: SlotReader { SlotReader(input: decoder.input) }

    func decodeNil() -> Bool { (try? decoder.input.isNil(range)) ?? false }
    func decode(_ type: Bool.Type) throws -> Bool { try reader.decode(type, range) }
    func decode(_ type: String.Type) throws -> String { try reader.decode(type, range) }
    func decode(_ type: Double.Type) throws -> Double { try reader.decode(type, range) }
    func decode(_ type: Float.Type) throws -> Float { try reader.decode(type, range) }
    func decode(_ type: Int.Type) throws -> Int { try reader.signed(type, range) }
    func decode(_ type: Int8.Type) throws -> Int8 { try reader.decode(type, range) }
    func decode(_ type: Int16.Type) throws -> Int16 { try reader.signed(type, range) }
    func decode(_ type: Int32.Type) throws -> Int32 { try reader.signed(type, range) }
    func decode(_ type: Int64.Type) throws -> Int64 { try reader.signed(type, range) }
    func decode(_ type: UInt.Type) throws -> UInt { try reader.unsigned(type, range) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try reader.decode(type, range) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try reader.unsigned(type, range) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try reader.unsigned(type, range) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try reader.unsigned(type, range) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decoder.decodeChild(type, range: range, key: nil)
    }
}
