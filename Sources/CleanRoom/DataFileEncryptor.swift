public import Crypto
public import EnclaveCore

/// Encrypts a data set file for the clean room, streaming: header first, then each completed chunk.
///
/// The owner's data key (32 bytes, the key the key broker releases only to the contract's clean room) never
/// encrypts data directly: each file gets a random ``DataFileHeader/fileID`` and its own key
/// `HKDF-SHA256(ikm: data key, salt: file ID, info: "EnclaveKit.cleanroom.data.v1")`. The chunk construction is
/// EnclaveKit's sealed stream (checked to fit: the chunk index and a final flag are the GCM nonce, the header
/// digest is the additional data), so reordered, dropped, duplicated, truncated, flipped or spliced chunks fail.
public struct DataFileEncryptor: Sendable {
    /// The default plaintext bytes per chunk (1 MiB).
    public static let defaultChunkSize: UInt32 = 1 << 20
    static let keyInfo = Array("EnclaveKit.cleanroom.data.v1".utf8)

    /// The file's header.
    public let header: DataFileHeader
    private var sealer: StreamSealer
    private var headerWritten = false

    /// Derive a file's key from the owner's data key and the file ID.
    static func fileKey(dataKey: SymmetricKey, fileID: Digest32) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: dataKey,
            salt: fileID.bytes,
            info: keyInfo,
            outputByteCount: 32
        )
    }

    /// The sealed-stream header that carries ours as its additional data (its digest authenticates every chunk).
    static func streamHeader(_ header: DataFileHeader) -> SealedHeader {
        SealedHeader(
            kind: .stream,
            policy: .uniqueID,
            securityVersion: 0,
            keyID: header.fileID,
            chunkSize: header.chunkSize,
            additionalData: header.bytes
        )
    }

    /// Start a file for `dataSet` of contract `contractID`.
    ///
    /// - Throws: ``CleanRoomError/Code/malformed`` for a key that is not 32 bytes, a name that is empty or too long,
    ///   or a chunk size out of range.
    public init(
        dataKey: SymmetricKey,
        contractID: Digest32,
        dataSet: String,
        chunkSize: UInt32 = defaultChunkSize
    ) throws(CleanRoomError) {
        guard dataKey.bitCount == 256 else { throw CleanRoomError(.malformed, "a data key is 32 bytes") }
        guard !dataSet.isEmpty, dataSet.utf8.count <= DataFileHeader.maxNameBytes else {
            throw CleanRoomError(.malformed, "data set name must be 1 to \(DataFileHeader.maxNameBytes) bytes")
        }
        guard DataFileHeader.chunkSizes.contains(chunkSize) else {
            throw CleanRoomError(.malformed, "chunk size \(chunkSize) out of range \(DataFileHeader.chunkSizes)")
        }
        // Force-try is safe: 32 random bytes.
        let fileID = try! Digest32(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        header = DataFileHeader(contractID: contractID, dataSet: dataSet, chunkSize: chunkSize, fileID: fileID)
        do throws(EnclaveError) {
            sealer = try StreamSealer(
                header: Self.streamHeader(header),
                key: Self.fileKey(dataKey: dataKey, fileID: fileID)
            )
        } catch {
            throw CleanRoomError(.malformed, "cannot start the stream: \(error.reason)")
        }
    }

    /// Add plaintext; returns the bytes to append to the file (the header the first time, then whole chunks).
    public mutating func write(_ plaintext: [UInt8]) throws(CleanRoomError) -> [UInt8] {
        var out: [UInt8] = []
        if !headerWritten {
            out = header.bytes
            headerWritten = true
        }
        do throws(EnclaveError) {
            out += try sealer.write(plaintext)
        } catch {
            throw CleanRoomError(.engine, "encryption failed: \(error.reason)")
        }
        return out
    }

    /// End the file; returns its last bytes (the header too if nothing was written).
    public mutating func finish() throws(CleanRoomError) -> [UInt8] {
        var out: [UInt8] = []
        if !headerWritten {
            out = header.bytes
            headerWritten = true
        }
        do throws(EnclaveError) {
            out += try sealer.finish()
        } catch {
            throw CleanRoomError(.engine, "encryption failed: \(error.reason)")
        }
        return out
    }

    /// Encrypt a whole buffer (tests, small files).
    public static func encrypt(
        _ plaintext: [UInt8],
        dataKey: SymmetricKey,
        contractID: Digest32,
        dataSet: String,
        chunkSize: UInt32 = defaultChunkSize
    ) throws(CleanRoomError) -> [UInt8] {
        var encryptor = try DataFileEncryptor(
            dataKey: dataKey,
            contractID: contractID,
            dataSet: dataSet,
            chunkSize: chunkSize
        )
        return try encryptor.write(plaintext) + encryptor.finish()
    }
}
