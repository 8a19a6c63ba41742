internal import Synchronization

/// Decoded store records by their exact text: a record read on every release (the key's `StoredKeyVersion`) is
/// decoded from JSON once, not per request. The store is still read every time, so a change by this or another
/// instance (a new policy, a disabled or deleted key) is seen at once: a changed record is new text, decoded anew.
///
/// A decoding is a pure function of the text, so the cache answers exactly what decoding answers; text that does
/// not decode is not kept. Bounded: at ``capacity`` records or ``byteCapacity`` bytes of text it starts over.
final class RecordDecodeCache<Value: Sendable>: Sendable {
    /// The most records held.
    let capacity: Int
    /// The most bytes of record text held.
    let byteCapacity: Int

    private struct Table: Sendable {
        var values: [String: Value] = [:]
        var bytes = 0
    }

    private let table = Mutex(Table())

    /// A cache of at most `capacity` records and `byteCapacity` bytes of their text.
    init(capacity: Int = 1024, byteCapacity: Int = 16 << 20) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
    }

    /// The value `text` decodes to with `decode`, decoded only when this text is not held.
    func value(for text: String, decode: (String) throws -> Value) throws -> Value {
        if let value = table.withLock({ $0.values[text] }) { return value }
        let value = try decode(text)
        let size = text.utf8.count
        guard size <= byteCapacity else { return value }
        table.withLock { table in
            if table.values.count >= capacity || table.bytes + size > byteCapacity { table = Table() }
            if table.values.updateValue(value, forKey: text) == nil { table.bytes += size }
        }
        return value
    }

    /// How many records are held (tests).
    var count: Int { table.withLock { $0.values.count } }
}
