/// A bounds-checked little-endian reader over untrusted bytes. Every read checks the remaining length first.
package struct ByteReader {
    package let bytes: [UInt8]
    package private(set) var position: Int
    package let end: Int

    package init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
    }

    package var remaining: Int { end - position }
    package var isAtEnd: Bool { position == end }

    package mutating func take(_ count: Int, _ what: StaticString) throws(EnclaveError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw .malformedInput("truncated \(what): need \(count) bytes, \(remaining) remain")
        }
        defer { position += count }
        return bytes[position..<position + count]
    }

    package mutating func integer<I: FixedWidthInteger & UnsignedInteger>(
        _: I.Type,
        _ what: StaticString
    )
        throws(EnclaveError) -> I
    {
        let slice = try take(MemoryLayout<I>.size, what)
        var value: I = 0
        for (shift, byte) in slice.enumerated() { value |= I(byte) << (8 * shift) }
        return value
    }

    package mutating func digest(_ what: StaticString) throws(EnclaveError) -> Digest32 {
        try Digest32(bytes: take(32, what))
    }

    /// Throw unless every byte was consumed.
    package func expectEnd(_ what: StaticString) throws(EnclaveError) {
        guard isAtEnd else { throw .malformedInput("\(remaining) trailing bytes after \(what)") }
    }
}
