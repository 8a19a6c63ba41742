/// LEB128 variable-length integers, as the binary codec and the wire frames use them.
///
/// Decoding is strict: at most 10 bytes, no overflow past 64 bits, and only the shortest encoding is accepted, so
/// each value has exactly one byte representation.
package enum Varint {
    /// Append `value` to `bytes`.
    @inlinable
    package static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Write `value` at the start of `buffer` (which has room for ``size(_:)`` bytes); returns how many it took.
    @inlinable
    package static func write(_ value: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= size(value))
        var v = value
        var n = 0
        while v >= 0x80 {
            buffer[n] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            n += 1
        }
        buffer[n] = UInt8(v)
        return n + 1
    }

    /// How many bytes `value` takes.
    @inlinable
    package static func size(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// Read a varint from `bytes[position..<end]`, advancing `position`.
    package static func read(
        _ bytes: ArraySlice<UInt8>,
        at position: inout Int,
        end: Int
    ) throws(EnclaveError)
        -> UInt64
    {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = position
        while true {
            guard index < end else { throw .malformedInput("truncated variable-length integer") }
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 { throw .malformedInput("variable-length integer overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 { throw .malformedInput("non-minimal variable-length integer") }
                break
            }
            shift += 7
        }
        position = index
        return result
    }

    /// Read a varint that is used as a length or count: it must fit in `Int` and not exceed `limit`.
    package static func readLength(
        _ bytes: ArraySlice<UInt8>,
        at position: inout Int,
        end: Int,
        limit: Int
    ) throws(EnclaveError) -> Int {
        let raw = try read(bytes, at: &position, end: end)
        guard let value = Int(exactly: raw), value <= limit else {
            throw .malformedInput("length \(raw) exceeds the \(limit) bytes that remain")
        }
        return value
    }

    /// Read a varint that is a byte length: it must not exceed the bytes left after the varint itself.
    package static func readByteLength(
        _ bytes: ArraySlice<UInt8>,
        at position: inout Int,
        end: Int
    ) throws(EnclaveError) -> Int {
        let raw = try read(bytes, at: &position, end: end)
        guard let value = Int(exactly: raw), value <= end - position else {
            throw .malformedInput("length \(raw) exceeds the \(end - position) bytes that remain")
        }
        return value
    }
}
