public import Crypto
public import EnclaveCore

/// Envelope encryption of a file under a broker key (`enclave keys encrypt|decrypt`, and an enclave that got the
/// key released): a fresh AES-256 data key per file, the file in authenticated chunks (``EnvelopeHeader``), the
/// data key wrapped by the broker key.
public enum Envelope {
    /// The default plaintext bytes per chunk (1 MiB).
    public static let defaultChunkSize: UInt32 = 1 << 20
    static let keyInfo = Array("EnclaveKit.keys.envelope.v1".utf8)

    /// The file key: HKDF-SHA256 of the data key salted with the file ID.
    static func fileKey(dataKey: SymmetricKey, fileID: Digest32) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: dataKey, salt: fileID.bytes, info: keyInfo, outputByteCount: 32)
    }

    /// The sealed-stream header whose additional data is ours (so every chunk authenticates the whole header).
    static func streamHeader(_ header: EnvelopeHeader) -> SealedHeader {
        SealedHeader(
            kind: .stream,
            policy: .uniqueID,
            securityVersion: 0,
            keyID: header.fileID,
            chunkSize: header.chunkSize,
            additionalData: header.bytes
        )
    }

    /// A new random data key and file ID.
    public static func newDataKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

    /// A new random file ID.
    public static func newFileID() -> Digest32 {
        // Force-try is safe: 32 random bytes.
        try! Digest32(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// `plaintext` encrypted under `dataKey`, behind `header` (whose `wrappedKey` carries the wrapped `dataKey`).
    /// - Throws: `EnclaveError` for a data key that is not 32 bytes or a chunk size out of range.
    public static func encrypt(
        _ plaintext: [UInt8],
        header: EnvelopeHeader,
        dataKey: SymmetricKey
    )
        throws(EnclaveError) -> [UInt8]
    {
        guard dataKey.bitCount == 256 else { throw .malformedInput("a data key is 32 bytes") }
        guard SealedHeader.chunkSizes.contains(header.chunkSize) else {
            throw .malformedInput("chunk size \(header.chunkSize) out of range")
        }
        var sealer = try StreamSealer(
            header: streamHeader(header),
            key: fileKey(dataKey: dataKey, fileID: header.fileID)
        )
        var out = header.bytes
        out += try sealer.write(plaintext)
        out += try sealer.finish()
        return out
    }

    /// The header of an envelope file.
    /// - Throws: `EnclaveError` `malformedInput` when `file` does not start with one.
    public static func header(of file: [UInt8]) throws(EnclaveError) -> EnvelopeHeader {
        guard let (header, _) = try EnvelopeHeader.parse(file) else {
            throw .malformedInput("the envelope file is truncated in its header")
        }
        return header
    }

    /// The plaintext of an envelope file, with `dataKey` (the header's wrapped key, unwrapped).
    /// - Throws: `EnclaveError` — `malformedInput` for a bad header, `invalidSignature` for a chunk that does not
    ///   authenticate (wrong key; a flipped, reordered, dropped, truncated or appended chunk).
    public static func decrypt(_ file: [UInt8], dataKey: SymmetricKey) throws(EnclaveError) -> [UInt8] {
        guard let (header, bodyStart) = try EnvelopeHeader.parse(file) else {
            throw .malformedInput("the envelope file is truncated in its header")
        }
        guard dataKey.bitCount == 256 else { throw .malformedInput("a data key is 32 bytes") }
        var unsealer = try StreamUnsealer(
            header: streamHeader(header),
            key: fileKey(dataKey: dataKey, fileID: header.fileID)
        )
        let plaintext = try unsealer.feed(file[bodyStart...])
        try unsealer.finish()
        return plaintext
    }
}
