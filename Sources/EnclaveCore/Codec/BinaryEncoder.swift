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
        let root = try BinaryEncoding.node(for: value, depth: 0, maxDepth: maxDepth, codingPath: [])
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
enum BinaryEncoding {
    enum Node {
        case null
        case primitive([UInt8])
        case data(Data)
        case bytes([UInt8])
        case keyed(KeyedBox)
        case unkeyed(UnkeyedBox)
        case pending(SlotBox)
    }

    /// A keyed container's fields, in the order they were first written.
    final class KeyedBox {
        var fields: [(key: String, node: SlotBox)] = []
        var index: [String: Int] = [:]
        var cachedSize = -1

        func slot(for key: String) -> SlotBox {
            if let position = index[key] { return fields[position].node }
            let slot = SlotBox()
            index[key] = fields.count
            fields.append((key, slot))
            return slot
        }
    }

    final class UnkeyedBox {
        var elements: [SlotBox] = []
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
        codingPath: [any CodingKey]
    ) throws
        -> Node
    {
        // Compare types, then reinterpret: `as?` from a generic to an array converts element by element.
        if T.self == [UInt8].self { return .bytes(unsafeBitCast(value, to: [UInt8].self)) }
        if T.self == Data.self { return .data(unsafeBitCast(value, to: Data.self)) }
        guard depth <= maxDepth else {
            throw EnclaveError.limitExceeded("value nests deeper than \(maxDepth) levels")
        }
        let slot = SlotBox()
        let encoder = NodeEncoder(slot: slot, depth: depth, maxDepth: maxDepth, codingPath: codingPath)
        try value.encode(to: encoder)
        return slot.node ?? .keyed(KeyedBox())
    }

    // MARK: Serialisation

    static func resolved(_ slot: SlotBox) -> Node { slot.node ?? .keyed(KeyedBox()) }

    static func slotSize(_ node: Node) -> Int {
        if case .null = node { return 1 }
        return 1 + valueSize(node)
    }

    static func valueSize(_ node: Node) -> Int {
        switch node {
        case .null: return 0
        case .primitive(let bytes): return bytes.count
        case .data(let data): return Varint.size(UInt64(data.count)) + data.count
        case .bytes(let bytes): return Varint.size(UInt64(bytes.count)) + bytes.count
        case .pending(let slot): return valueSize(resolved(slot))
        case .keyed(let box):
            if box.cachedSize >= 0 { return box.cachedSize }
            var total = Varint.size(UInt64(box.fields.count))
            for field in box.fields {
                let utf8Count = field.key.utf8.count
                let inner = slotSize(resolved(field.node))
                total += Varint.size(UInt64(utf8Count)) + utf8Count + Varint.size(UInt64(inner)) + inner
            }
            box.cachedSize = total
            return total
        case .unkeyed(let box):
            if box.cachedSize >= 0 { return box.cachedSize }
            var total = Varint.size(UInt64(box.elements.count))
            for element in box.elements {
                let inner = slotSize(resolved(element))
                total += Varint.size(UInt64(inner)) + inner
            }
            box.cachedSize = total
            return total
        }
    }

    static func writeSlot(_ node: Node, into out: inout [UInt8]) {
        if case .pending(let slot) = node {
            writeSlot(resolved(slot), into: &out)
            return
        }
        if case .null = node {
            out.append(0)
            return
        }
        out.append(1)
        writeValue(node, into: &out)
    }

    static func writeValue(_ node: Node, into out: inout [UInt8]) {
        switch node {
        case .null: break
        case .primitive(let bytes): out.append(contentsOf: bytes)
        case .data(let data):
            Varint.append(UInt64(data.count), to: &out)
            out.append(contentsOf: data)
        case .bytes(let bytes):
            Varint.append(UInt64(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        case .pending(let slot): writeValue(resolved(slot), into: &out)
        case .keyed(let box):
            Varint.append(UInt64(box.fields.count), to: &out)
            // Fields in key order: the encoding of a value is canonical (dictionaries included).
            for field in box.fields.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                Varint.append(UInt64(field.key.utf8.count), to: &out)
                out.append(contentsOf: field.key.utf8)
                let inner = resolved(field.node)
                Varint.append(UInt64(slotSize(inner)), to: &out)
                writeSlot(inner, into: &out)
            }
        case .unkeyed(let box):
            Varint.append(UInt64(box.elements.count), to: &out)
            for element in box.elements {
                let inner = resolved(element)
                Varint.append(UInt64(slotSize(inner)), to: &out)
                writeSlot(inner, into: &out)
            }
        }
    }

    // MARK: Primitives

    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    static func unsigned(_ value: UInt64) -> Node {
        var bytes = [UInt8]()
        Varint.append(value, to: &bytes)
        return .primitive(bytes)
    }

    static func string(_ value: String) -> Node {
        var bytes = [UInt8]()
        Varint.append(UInt64(value.utf8.count), to: &bytes)
        bytes.append(contentsOf: value.utf8)
        return .primitive(bytes)
    }

    static func littleEndian<I: FixedWidthInteger>(_ value: I) -> Node {
        withUnsafeBytes(of: value.littleEndian) { .primitive(Array($0)) }
    }
}

/// The `Encoder` handed to `Encodable` implementations: it fills one slot.
private final class NodeEncoder: Encoder {
    let slot: BinaryEncoding.SlotBox
    let depth: Int
    let maxDepth: Int
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(slot: BinaryEncoding.SlotBox, depth: Int, maxDepth: Int, codingPath: [any CodingKey]) {
        self.slot = slot
        self.depth = depth
        self.maxDepth = maxDepth
        self.codingPath = codingPath
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

    func encodeValue<T: Encodable>(_ value: T, at path: [any CodingKey]) throws -> BinaryEncoding.Node {
        try BinaryEncoding.node(for: value, depth: depth + 1, maxDepth: maxDepth, codingPath: path)
    }

    func nested(slot: BinaryEncoding.SlotBox, path: [any CodingKey]) -> NodeEncoder {
        NodeEncoder(slot: slot, depth: depth + 1, maxDepth: maxDepth, codingPath: path)
    }
}

/// Turns a primitive into its node; shared by all three container kinds.
private enum PrimitiveNodes {
    static func node(_ value: Bool) -> BinaryEncoding.Node { .primitive([value ? 1 : 0]) }
    static func node(_ value: String) -> BinaryEncoding.Node { BinaryEncoding.string(value) }
    static func node(_ value: Double) -> BinaryEncoding.Node { BinaryEncoding.littleEndian(value.bitPattern) }
    static func node(_ value: Float) -> BinaryEncoding.Node { BinaryEncoding.littleEndian(value.bitPattern) }
    static func node(_ value: Int8) -> BinaryEncoding.Node { .primitive([UInt8(bitPattern: value)]) }
    static func node(_ value: UInt8) -> BinaryEncoding.Node { .primitive([value]) }
    static func node<I: FixedWidthInteger & SignedInteger>(signed value: I) -> BinaryEncoding.Node {
        BinaryEncoding.unsigned(BinaryEncoding.zigzag(Int64(value)))
    }
    static func node<I: FixedWidthInteger & UnsignedInteger>(unsigned value: I) -> BinaryEncoding.Node {
        BinaryEncoding.unsigned(UInt64(value))
    }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: BinaryEncoding.KeyedBox
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ node: BinaryEncoding.Node, _ key: Key) {
        box.slot(for: key.stringValue).node = node
        box.cachedSize = -1
    }

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
        set(try encoder.encodeValue(value, at: codingPath + [key]), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    )
        -> KeyedEncodingContainer<NestedKey>
    {
        let slot = box.slot(for: key.stringValue)
        box.cachedSize = -1
        return encoder.nested(slot: slot, path: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let slot = box.slot(for: key.stringValue)
        box.cachedSize = -1
        return encoder.nested(slot: slot, path: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.nested(slot: box.slot(for: "super"), path: codingPath)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.nested(slot: box.slot(for: key.stringValue), path: codingPath + [key])
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ index: Int) {
        stringValue = "\(index)"
        intValue = index
    }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.init(intValue) }
}

private struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let box: BinaryEncoding.UnkeyedBox
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { box.elements.count }

    private func append(_ node: BinaryEncoding.Node) {
        box.elements.append(BinaryEncoding.SlotBox(node))
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
        append(try encoder.encodeValue(value, at: codingPath + [IndexKey(count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    )
        -> KeyedEncodingContainer<NestedKey>
    {
        let slot = BinaryEncoding.SlotBox()
        let path = codingPath + [IndexKey(count)]
        box.elements.append(slot)
        box.cachedSize = -1
        return encoder.nested(slot: slot, path: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let slot = BinaryEncoding.SlotBox()
        let path = codingPath + [IndexKey(count)]
        box.elements.append(slot)
        box.cachedSize = -1
        return encoder.nested(slot: slot, path: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let slot = BinaryEncoding.SlotBox()
        let path = codingPath + [IndexKey(count)]
        box.elements.append(slot)
        box.cachedSize = -1
        return encoder.nested(slot: slot, path: path)
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
        set(try encoder.encodeValue(value, at: codingPath))
    }
}
