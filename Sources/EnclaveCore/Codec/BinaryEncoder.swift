internal import Foundation

/// Encodes `Codable` values into EnclaveKit's compact binary format.
///
/// The format is schema-driven and strict. Every value sits in a *slot*: a presence byte (0 = nil, 1 = value)
/// followed by the value. Integers are LEB128 (signed ones zig-zag), floating point is little-endian IEEE 754,
/// strings and byte buffers are a length then their bytes, keyed containers are a field count then
/// `(key, length, slot)` triples in key order (so each value has one encoding), unkeyed containers a count then
/// `(length, slot)` pairs. `Data` and `[UInt8]` are written as one length-prefixed block, never element by element.
///
/// The encoder builds a small tree and writes it once into a buffer of the exact size, so large byte payloads are
/// copied once.
public struct BinaryEncoder: Sendable {
    /// The largest message, in bytes, the encoder produces; larger values fail with
    /// ``EnclaveError/Code/limitExceeded``.
    public var maxMessageSize: Int
    /// The deepest nesting of containers the encoder accepts.
    public var maxDepth: Int

    /// Create an encoder.
    /// - Parameters:
    ///   - maxMessageSize: the size limit for one encoded value (default 64 MiB).
    ///   - maxDepth: the nesting limit (default 64).
    public init(maxMessageSize: Int = 64 << 20, maxDepth: Int = 64) {
        self.maxMessageSize = maxMessageSize
        self.maxDepth = maxDepth
    }

    /// Encode `value` into a new byte array.
    /// - Throws: ``EnclaveError`` with code `limitExceeded` when the result would be too large or too deep.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        // The commonest argument and result of all (calls that take or return nothing): its bytes without a tree.
        // One shared buffer: returning it costs a retain, not an allocation.
        if T.self == Empty.self, maxMessageSize >= 2 { return Self.emptyEncoding }
        return try write(BinaryEncoding.node(for: value, depth: 0, maxDepth: maxDepth, parent: nil, key: nil))
    }

    /// The encoding of ``Empty`` (a present keyed container with no fields), shared by every call that takes or
    /// returns nothing.
    package static let emptyEncoding: [UInt8] = [1, 0]

    /// Encode `value` without the shortcuts for known types: every value goes through its `Encodable`
    /// implementation (byte buffers excepted, which are one block either way). Tests compare the shortcuts'
    /// bytes with these.
    package func encodeWithoutShortcuts<T: Encodable>(_ value: T) throws -> [UInt8] {
        try write(
            BinaryEncoding.node(for: value, depth: 0, maxDepth: maxDepth, parent: nil, key: nil, shortcuts: false)
        )
    }

    private func write(_ root: BinaryEncoding.Node) throws -> [UInt8] {
        let size = BinaryEncoding.slotSize(root)
        guard size <= maxMessageSize else {
            throw EnclaveError.limitExceeded("encoded value is \(size) bytes, over the \(maxMessageSize)-byte limit")
        }
        var out = [UInt8]()
        out.reserveCapacity(size)
        BinaryEncoding.writeSlot(root, into: &out)
        return out
    }
}

/// The encoder's intermediate tree and its serialisation.
///
/// Scalars and strings are held in the tree as values (no per-value buffer); containers are boxes because nested
/// encoders fill them after the parent has moved on.
enum BinaryEncoding {
    enum Node {
        case null
        /// A LEB128 varint (unsigned integers, and signed ones after zig-zag).
        case varint(UInt64)
        /// One raw byte (`Bool`, `Int8`, `UInt8`).
        case byte(UInt8)
        /// Four little-endian bytes (`Float`).
        case fixed32(UInt32)
        /// Eight little-endian bytes (`Double`).
        case fixed64(UInt64)
        /// A length, then the UTF-8 bytes.
        case string(String)
        case data(Data)
        case bytes([UInt8])
        case keyed(KeyedBox)
        case unkeyed(UnkeyedBox)
        /// A slot that a nested encoder fills.
        case pending(SlotBox)
    }

    /// A keyed container's fields, in the order they were first written.
    final class KeyedBox {
        /// Up to this many fields, a key is found by a linear scan (cheaper than hashing for structs).
        static let linearLimit = 16

        var fields: [(key: String, node: Node)] = []
        var index: [String: Int]?
        var cachedSize = -1

        private func position(of key: String) -> Int? {
            if let index { return index[key] }
            for position in fields.indices where fields[position].key == key { return position }
            return nil
        }

        func set(_ node: Node, for key: String) {
            cachedSize = -1
            if let position = position(of: key) {
                fields[position].node = node
                return
            }
            fields.append((key, node))
            if index != nil {
                index?[key] = fields.count - 1
            } else if fields.count > Self.linearLimit {
                var built = [String: Int](minimumCapacity: fields.count * 2)
                for (position, field) in fields.enumerated() { built[field.key] = position }
                index = built
            }
        }

        /// The slot a nested encoder fills for `key` (holding what the key already has, so that a nested
        /// container of the same kind adds to it).
        func slot(for key: String) -> SlotBox {
            if let position = position(of: key) {
                cachedSize = -1
                if case .pending(let slot) = fields[position].node { return slot }
                let slot = SlotBox(fields[position].node)
                fields[position].node = .pending(slot)
                return slot
            }
            let slot = SlotBox()
            set(.pending(slot), for: key)
            return slot
        }
    }

    final class UnkeyedBox {
        var elements: [Node] = []
        var cachedSize = -1
    }

    /// A slot that a container or a nested encoder fills later.
    final class SlotBox {
        var node: Node?
        init(_ node: Node? = nil) { self.node = node }
    }

    static func node<T: Encodable>(
        for value: T,
        depth: Int,
        maxDepth: Int,
        parent: NodeEncoder?,
        key: (any CodingKey)?,
        shortcuts: Bool = true
    ) throws
        -> Node
    {
        // Compare types, then reinterpret: `as?` from a generic to an array converts element by element.
        if T.self == [UInt8].self { return .bytes(unsafeBitCast(value, to: [UInt8].self)) }
        if T.self == Data.self { return .data(unsafeBitCast(value, to: Data.self)) }
        if shortcuts, let node = knownNode(value) { return node }
        guard depth <= maxDepth else {
            throw EnclaveError.limitExceeded("value nests deeper than \(maxDepth) levels")
        }
        let slot = SlotBox()
        let encoder = NodeEncoder(slot: slot, depth: depth, maxDepth: maxDepth, parent: parent, key: key)
        try value.encode(to: encoder)
        return slot.node ?? .keyed(KeyedBox())
    }

    /// The node of a value whose type's encoding is known here, without going through its `Encodable`
    /// implementation: the same bytes as that implementation writes (each is one single-value encode, or for
    /// `Empty` a keyed container with no fields, whose encoding is its field count 0).
    @inline(__always)
    static func knownNode<T: Encodable>(_ value: T) -> Node? {
        if T.self == Empty.self { return .byte(0) }
        if T.self == String.self { return .string(unsafeBitCast(value, to: String.self)) }
        if T.self == Int.self { return .varint(zigzag(Int64(unsafeBitCast(value, to: Int.self)))) }
        if T.self == UInt64.self { return .varint(unsafeBitCast(value, to: UInt64.self)) }
        if T.self == Int64.self { return .varint(zigzag(unsafeBitCast(value, to: Int64.self))) }
        if T.self == UInt32.self { return .varint(UInt64(unsafeBitCast(value, to: UInt32.self))) }
        if T.self == Int32.self { return .varint(zigzag(Int64(unsafeBitCast(value, to: Int32.self)))) }
        if T.self == UInt.self { return .varint(UInt64(unsafeBitCast(value, to: UInt.self))) }
        if T.self == Bool.self { return .byte(unsafeBitCast(value, to: Bool.self) ? 1 : 0) }
        if T.self == UInt8.self { return .byte(unsafeBitCast(value, to: UInt8.self)) }
        if T.self == Double.self { return .fixed64(unsafeBitCast(value, to: Double.self).bitPattern) }
        return nil
    }

    // MARK: Serialisation

    static func resolved(_ slot: SlotBox) -> Node { slot.node ?? .keyed(KeyedBox()) }

    static func slotSize(_ node: Node) -> Int {
        switch node {
        case .null: return 1
        case .pending(let slot): return slotSize(resolved(slot))
        default: return 1 + valueSize(node)
        }
    }

    static func valueSize(_ node: Node) -> Int {
        switch node {
        case .null: return 0
        case .varint(let value): return Varint.size(value)
        case .byte: return 1
        case .fixed32: return 4
        case .fixed64: return 8
        case .string(let string):
            let count = string.utf8.count
            return Varint.size(UInt64(count)) + count
        case .data(let data): return Varint.size(UInt64(data.count)) + data.count
        case .bytes(let bytes): return Varint.size(UInt64(bytes.count)) + bytes.count
        case .pending(let slot): return valueSize(resolved(slot))
        case .keyed(let box):
            if box.cachedSize >= 0 { return box.cachedSize }
            var total = Varint.size(UInt64(box.fields.count))
            for field in box.fields {
                let utf8Count = field.key.utf8.count
                let inner = slotSize(field.node)
                total += Varint.size(UInt64(utf8Count)) + utf8Count + Varint.size(UInt64(inner)) + inner
            }
            box.cachedSize = total
            return total
        case .unkeyed(let box):
            if box.cachedSize >= 0 { return box.cachedSize }
            var total = Varint.size(UInt64(box.elements.count))
            for element in box.elements {
                let inner = slotSize(element)
                total += Varint.size(UInt64(inner)) + inner
            }
            box.cachedSize = total
            return total
        }
    }

    static func writeSlot(_ node: Node, into out: inout [UInt8]) {
        switch node {
        case .pending(let slot): writeSlot(resolved(slot), into: &out)
        case .null: out.append(0)
        default:
            out.append(1)
            writeValue(node, into: &out)
        }
    }

    static func writeValue(_ node: Node, into out: inout [UInt8]) {
        switch node {
        case .null: break
        case .varint(let value): Varint.append(value, to: &out)
        case .byte(let byte): out.append(byte)
        case .fixed32(let value): withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        case .fixed64(let value): withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        case .string(let string):
            Varint.append(UInt64(string.utf8.count), to: &out)
            out.append(contentsOf: string.utf8)
        case .data(let data):
            Varint.append(UInt64(data.count), to: &out)
            out.append(contentsOf: data)
        case .bytes(let bytes):
            Varint.append(UInt64(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        case .pending(let slot): writeValue(resolved(slot), into: &out)
        case .keyed(let box):
            Varint.append(UInt64(box.fields.count), to: &out)
            // Fields in key order: the encoding of a value is canonical (dictionaries included). Synthesized
            // `Encodable` conformances usually write them in that order already, which one pass checks.
            if isSorted(box.fields) {
                for field in box.fields { writeField(field.key, field.node, into: &out) }
            } else {
                for field in box.fields.sorted(by: { precedes($0.key, $1.key) }) {
                    writeField(field.key, field.node, into: &out)
                }
            }
        case .unkeyed(let box):
            Varint.append(UInt64(box.elements.count), to: &out)
            for element in box.elements {
                Varint.append(UInt64(slotSize(element)), to: &out)
                writeSlot(element, into: &out)
            }
        }
    }

    private static func writeField(_ key: String, _ node: Node, into out: inout [UInt8]) {
        Varint.append(UInt64(key.utf8.count), to: &out)
        out.append(contentsOf: key.utf8)
        Varint.append(UInt64(slotSize(node)), to: &out)
        writeSlot(node, into: &out)
    }

    private static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    private static func isSorted(_ fields: [(key: String, node: Node)]) -> Bool {
        guard fields.count > 1 else { return true }
        for position in 1..<fields.count where !precedes(fields[position - 1].key, fields[position].key) {
            return false
        }
        return true
    }

    // MARK: Primitives

    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
}

/// The `Encoder` handed to `Encodable` implementations: it fills one slot.
///
/// The coding path is kept as a parent link and a key, and built only when someone asks for it.
final class NodeEncoder: Encoder {
    let slot: BinaryEncoding.SlotBox
    let depth: Int
    let maxDepth: Int
    let parent: NodeEncoder?
    let key: (any CodingKey)?
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var current: NodeEncoder? = self
        while let encoder = current {
            if let key = encoder.key { path.append(key) }
            current = encoder.parent
        }
        return path.reversed()
    }

    init(
        slot: BinaryEncoding.SlotBox,
        depth: Int,
        maxDepth: Int,
        parent: NodeEncoder?,
        key: (any CodingKey)?
    ) {
        self.slot = slot
        self.depth = depth
        self.maxDepth = maxDepth
        self.parent = parent
        self.key = key
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: BinaryEncoding.KeyedBox
        if case .keyed(let existing) = slot.node {
            box = existing
        } else {
            box = BinaryEncoding.KeyedBox()
            slot.node = .keyed(box)
        }
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(box: box, encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: BinaryEncoding.UnkeyedBox
        if case .unkeyed(let existing) = slot.node {
            box = existing
        } else {
            box = BinaryEncoding.UnkeyedBox()
            slot.node = .unkeyed(box)
        }
        return UnkeyedNodeContainer(box: box, encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleNodeContainer(encoder: self) }

    /// Encode a child value; `key` extends the coding path (nil for a single-value container's value).
    func encodeValue<T: Encodable>(_ value: T, key: (any CodingKey)?) throws -> BinaryEncoding.Node {
        if key == nil {
            // Same coding path as this encoder: a child linked to our parent with our key.
            return try BinaryEncoding.node(
                for: value,
                depth: depth + 1,
                maxDepth: maxDepth,
                parent: parent,
                key: self.key
            )
        }
        return try BinaryEncoding.node(for: value, depth: depth + 1, maxDepth: maxDepth, parent: self, key: key)
    }

    func nested(slot: BinaryEncoding.SlotBox, key: (any CodingKey)?) -> NodeEncoder {
        if key == nil {
            return NodeEncoder(slot: slot, depth: depth + 1, maxDepth: maxDepth, parent: parent, key: self.key)
        }
        return NodeEncoder(slot: slot, depth: depth + 1, maxDepth: maxDepth, parent: self, key: key)
    }
}

/// Turns a primitive into its node; shared by all three container kinds.
private enum PrimitiveNodes {
    static func node(_ value: Bool) -> BinaryEncoding.Node { .byte(value ? 1 : 0) }
    static func node(_ value: String) -> BinaryEncoding.Node { .string(value) }
    static func node(_ value: Double) -> BinaryEncoding.Node { .fixed64(value.bitPattern) }
    static func node(_ value: Float) -> BinaryEncoding.Node { .fixed32(value.bitPattern) }
    static func node(_ value: Int8) -> BinaryEncoding.Node { .byte(UInt8(bitPattern: value)) }
    static func node(_ value: UInt8) -> BinaryEncoding.Node { .byte(value) }
    static func node<I: FixedWidthInteger & SignedInteger>(signed value: I) -> BinaryEncoding.Node {
        .varint(BinaryEncoding.zigzag(Int64(value)))
    }
    static func node<I: FixedWidthInteger & UnsignedInteger>(unsigned value: I) -> BinaryEncoding.Node {
        .varint(UInt64(value))
    }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: BinaryEncoding.KeyedBox
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ node: BinaryEncoding.Node, _ key: Key) { box.set(node, for: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(PrimitiveNodes.node(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(PrimitiveNodes.node(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(PrimitiveNodes.node(value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(PrimitiveNodes.node(value), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(PrimitiveNodes.node(signed: value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(PrimitiveNodes.node(value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(PrimitiveNodes.node(signed: value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(PrimitiveNodes.node(signed: value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(PrimitiveNodes.node(signed: value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(PrimitiveNodes.node(unsigned: value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(PrimitiveNodes.node(value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(PrimitiveNodes.node(unsigned: value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(PrimitiveNodes.node(unsigned: value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(PrimitiveNodes.node(unsigned: value), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(try encoder.encodeValue(value, key: key), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    )
        -> KeyedEncodingContainer<NestedKey>
    {
        encoder.nested(slot: box.slot(for: key.stringValue), key: key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        encoder.nested(slot: box.slot(for: key.stringValue), key: key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.nested(slot: box.slot(for: "super"), key: nil)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.nested(slot: box.slot(for: key.stringValue), key: key)
    }
}

/// An unkeyed container's position as a coding key; its string form is built only when asked for.
private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.init(intValue) }
}

private struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let box: BinaryEncoding.UnkeyedBox
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { box.elements.count }

    private func append(_ node: BinaryEncoding.Node) {
        box.elements.append(node)
        box.cachedSize = -1
    }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: String) throws { append(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Double) throws { append(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Float) throws { append(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Int) throws { append(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: Int8) throws { append(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Int16) throws { append(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: Int32) throws { append(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: Int64) throws { append(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: UInt) throws { append(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode(_ value: UInt8) throws { append(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: UInt16) throws { append(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode(_ value: UInt32) throws { append(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode(_ value: UInt64) throws { append(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        append(try encoder.encodeValue(value, key: IndexKey(count)))
    }

    private mutating func nestedSlot() -> (BinaryEncoding.SlotBox, IndexKey) {
        let slot = BinaryEncoding.SlotBox()
        let key = IndexKey(count)
        append(.pending(slot))
        return (slot, key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    )
        -> KeyedEncodingContainer<NestedKey>
    {
        let (slot, key) = nestedSlot()
        return encoder.nested(slot: slot, key: key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let (slot, key) = nestedSlot()
        return encoder.nested(slot: slot, key: key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let (slot, key) = nestedSlot()
        return encoder.nested(slot: slot, key: key)
    }
}

private struct SingleNodeContainer: SingleValueEncodingContainer {
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ node: BinaryEncoding.Node) { encoder.slot.node = node }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: String) throws { set(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Double) throws { set(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Float) throws { set(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Int) throws { set(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: Int8) throws { set(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: Int16) throws { set(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: Int32) throws { set(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: Int64) throws { set(PrimitiveNodes.node(signed: value)) }
    mutating func encode(_ value: UInt) throws { set(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode(_ value: UInt8) throws { set(PrimitiveNodes.node(value)) }
    mutating func encode(_ value: UInt16) throws { set(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode(_ value: UInt32) throws { set(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode(_ value: UInt64) throws { set(PrimitiveNodes.node(unsigned: value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try encoder.encodeValue(value, key: nil))
    }
}
