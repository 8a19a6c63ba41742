/// A 32-byte value such as a SHA-256 measurement or signer ID.
public struct Digest32: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The 32 bytes.
    public let bytes: [UInt8]

    /// Wrap exactly 32 bytes.
    /// - Throws: ``EnclaveError`` `malformedInput` when `bytes` is not 32 bytes long.
    public init(bytes: some Sequence<UInt8>) throws(EnclaveError) {
        let array = Array(bytes)
        guard array.count == 32 else { throw .malformedInput("expected 32 bytes, got \(array.count)") }
        self.bytes = array
    }

    /// Parse 64 hexadecimal digits.
    public init(hex: String) throws(EnclaveError) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else {
            throw .malformedInput("expected 64 hexadecimal digits")
        }
        self.bytes = bytes
    }

    /// All zeros.
    public static let zero = try! Digest32(bytes: [UInt8](repeating: 0, count: 32))  // swift-format-ignore

    /// Lower-case hexadecimal.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public init(from decoder: any Decoder) throws {
        let bytes = try decoder.singleValueContainer().decode([UInt8].self)
        try self.init(bytes: bytes)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bytes)
    }
}
