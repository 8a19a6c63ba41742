package import EnclaveCore

/// One message on an enclave channel.
///
/// Wire layout (little-endian): `u32` payload length, `u8` kind, `u64` call ID, payload. Requests and pings carry
/// the sender's call ID; responses, errors and pongs carry the ID of the request they answer.
public struct Frame: Sendable {
    /// What a frame is.
    public enum Kind: UInt8, Sendable {
        /// A call: payload is varint name length, name, encoded argument.
        case request = 1
        /// A successful result: payload is the encoded result.
        case response = 2
        /// A failed call: payload is varint code length, code, message.
        case error = 3
        /// A transport echo request, answered without decoding (benchmarks and liveness).
        case ping = 4
        /// The answer to a ping, carrying the same payload.
        case pong = 5
        /// Where the sender's sending thread runs: payload exactly a `u32` CPU number, call ID 0. Sent ahead of a
        /// frame when that thread's CPU changed, read as a hint (see `SpinPolicy`), never answered.
        case placement = 6
    }

    /// Header size in bytes.
    public static let headerSize = 13

    /// What the frame is: a request, a response, an error, a ping or a pong.
    public var kind: Kind
    /// The sender's ID for a request or ping; for a response, error or pong, the ID of the request it answers.
    public var callID: UInt64
    /// The payload (for a request: name and encoded argument); at most the channel's `maxFrameSize` bytes.
    public var payload: [UInt8]

    /// A frame.
    ///
    /// - Parameters:
    ///   - kind: What the frame is.
    ///   - callID: The request's ID (see ``callID``).
    ///   - payload: The payload, laid out as `kind` requires.
    public init(kind: Kind, callID: UInt64, payload: [UInt8]) {
        self.kind = kind
        self.callID = callID
        self.payload = payload
    }

    /// The 13-byte header for a payload of `length` bytes.
    static func header(kind: Kind, callID: UInt64, length: UInt32) -> [UInt8] {
        var writer = ByteWriter()
        writer.integer(length)
        writer.integer(kind.rawValue)
        writer.integer(callID)
        return writer.bytes
    }

    /// Parse a header; the caller checks the length against its limit before reading the payload.
    static func parseHeader(_ bytes: [UInt8]) throws(EnclaveError) -> (kind: Kind, callID: UInt64, length: Int) {
        var reader = ByteReader(bytes)
        let length = try reader.integer(UInt32.self, "frame length")
        let rawKind = try reader.integer(UInt8.self, "frame kind")
        let callID = try reader.integer(UInt64.self, "call ID")
        guard let kind = Kind(rawValue: rawKind) else { throw .protocolViolation("unknown frame kind \(rawKind)") }
        return (kind, callID, Int(length))
    }
}

/// Request and error payload layouts.
package enum FramePayload {
    /// What precedes the encoded argument in a request: the name's length and the name.
    package static func requestPrefix(name: String) -> [UInt8] {
        var out = [UInt8]()
        Varint.append(UInt64(name.utf8.count), to: &out)
        out.append(contentsOf: name.utf8)
        return out
    }

    package static func parseRequest(
        _ payload: [UInt8]
    ) throws(EnclaveError) -> (
        name: String, argument: ArraySlice<UInt8>
    ) {
        var position = 0
        let length = try Varint.readLength(
            payload[...],
            at: &position,
            end: payload.count,
            limit: min(256, payload.count)
        )
        guard length <= payload.count - position,
            let name = String(validating: payload[position..<position + length], as: UTF8.self)
        else {
            throw .malformedInput("call name is truncated or not UTF-8")
        }
        return (name, payload[(position + length)...])
    }

    package static func error(code: String, message: String) -> [UInt8] {
        var out = [UInt8]()
        Varint.append(UInt64(code.utf8.count), to: &out)
        out.append(contentsOf: code.utf8)
        out.append(contentsOf: message.utf8.prefix(4096))
        return out
    }

    package static func parseError(_ payload: [UInt8]) -> (code: String, message: String) {
        var position = 0
        guard let length = try? Varint.readLength(payload[...], at: &position, end: payload.count, limit: 64),
            length <= payload.count - position
        else {
            return ("protocolViolation", "malformed error frame")
        }
        let code = String(decoding: payload[position..<position + length], as: UTF8.self)
        let message = String(decoding: payload[(position + length)...].prefix(4096), as: UTF8.self)
        return (code, message)
    }
}
