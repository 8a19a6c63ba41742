public import EnclaveCore

/// The header of an encrypted data set file (`.ecr`), in clear and authenticated.
///
/// Layout (little-endian): magic `EKCR`, `u8` format version (1), `u8` flags (0), `u16` reserved (0), the 32-byte
/// contract ID, a 32-byte random file ID, `u32` chunk size, `u16` data set name length, the name (UTF-8). The body
/// that follows is the chunked stream of EnclaveKit's sealing (`StreamSealer`): per chunk a `u32` length, the
/// AES-256-GCM ciphertext and tag; the nonce is the chunk index and a final-chunk flag; the additional data is a
/// digest covering this whole header. The key of the file is HKDF-SHA256 of the owner's data key salted with the
/// file ID (see ``DataFileEncryptor``), so no two files ever share a (key, nonce) pair.
public struct DataFileHeader: Hashable, Sendable {
    static let magic: [UInt8] = Array("EKCR".utf8)
    /// The format version this code writes and reads.
    public static let formatVersion: UInt8 = 1
    /// The chunk sizes allowed (those of the sealed stream).
    public static let chunkSizes: ClosedRange<UInt32> = 4096...(16 << 20)
    /// The longest data set name.
    public static let maxNameBytes = 255

    /// The contract the data is for.
    public var contractID: Digest32
    /// The data set (table) of the contract it fills.
    public var dataSet: String
    /// Plaintext bytes per chunk.
    public var chunkSize: UInt32
    /// Random, chosen per file: salts the file key.
    public var fileID: Digest32

    /// Creates one from its members, each as documented on its property.
    public init(contractID: Digest32, dataSet: String, chunkSize: UInt32, fileID: Digest32) {
        self.contractID = contractID
        self.dataSet = dataSet
        self.chunkSize = chunkSize
        self.fileID = fileID
    }

    /// The encoded header.
    public var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.append(Self.magic)
        writer.integer(Self.formatVersion)
        writer.integer(UInt8(0))
        writer.integer(UInt16(0))
        writer.append(contractID.bytes)
        writer.append(fileID.bytes)
        writer.integer(chunkSize)
        let name = Array(dataSet.utf8)
        writer.integer(UInt16(name.count))
        writer.append(name)
        return writer.bytes
    }

    /// The size of the header's fixed part (everything but the name).
    static let fixedSize = 4 + 1 + 1 + 2 + 32 + 32 + 4 + 2

    /// Parse a header from the front of `bytes`; `nil` when more bytes are needed.
    ///
    /// - Throws: ``CleanRoomError/Code/dataTampered`` for a malformed header.
    public static func parse(_ bytes: [UInt8]) throws(CleanRoomError) -> (header: DataFileHeader, bodyStart: Int)? {
        guard bytes.count >= fixedSize else {
            if !bytes.isEmpty, !magic.starts(with: bytes.prefix(4)) {
                throw CleanRoomError(.dataTampered, "not an encrypted clean room data file (bad magic)")
            }
            return nil
        }
        func read<T>(_ body: () throws(EnclaveError) -> T) throws(CleanRoomError) -> T {
            do throws(EnclaveError) { return try body() } catch {
                throw CleanRoomError(.dataTampered, "data file header: \(error.reason)")
            }
        }
        var reader = ByteReader(bytes)
        guard Array(try read { () throws(EnclaveError) in try reader.take(4, "magic") }) == magic else {
            throw CleanRoomError(.dataTampered, "not an encrypted clean room data file (bad magic)")
        }
        let version = try read { () throws(EnclaveError) in try reader.integer(UInt8.self, "version") }
        guard version == formatVersion else {
            throw CleanRoomError(.dataTampered, "unsupported data file format version \(version)")
        }
        let flags = try read { () throws(EnclaveError) in try reader.integer(UInt8.self, "flags") }
        let reserved = try read { () throws(EnclaveError) in try reader.integer(UInt16.self, "reserved") }
        guard flags == 0, reserved == 0 else { throw CleanRoomError(.dataTampered, "unknown data file flags") }
        let contractID = try read { () throws(EnclaveError) in try reader.digest("contract ID") }
        let fileID = try read { () throws(EnclaveError) in try reader.digest("file ID") }
        let chunkSize = try read { () throws(EnclaveError) in try reader.integer(UInt32.self, "chunk size") }
        guard chunkSizes.contains(chunkSize) else {
            throw CleanRoomError(.dataTampered, "chunk size \(chunkSize) out of range")
        }
        let length = Int(try read { () throws(EnclaveError) in try reader.integer(UInt16.self, "name length") })
        guard length > 0, length <= maxNameBytes else {
            throw CleanRoomError(.dataTampered, "data set name length \(length) out of range")
        }
        guard reader.remaining >= length else { return nil }
        let nameBytes = try read { () throws(EnclaveError) in try reader.take(length, "name") }
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
            throw CleanRoomError(.dataTampered, "data set name is not UTF-8")
        }
        let header = DataFileHeader(contractID: contractID, dataSet: name, chunkSize: chunkSize, fileID: fileID)
        return (header, reader.position)
    }
}
