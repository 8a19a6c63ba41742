internal import Crypto
internal import Foundation

/// AES-256-GCM over sealed blobs and streams, given the derived key. The enclave runtime fetches the key from the
/// platform; this type never sees the platform secret.
package enum SealingCipher {
    static let nonceSize = 12
    static let tagSize = 16

    /// The key of one blob or stream: HKDF from the (policy, security version) root and the blob's key ID.
    package static func blobKey(root: [UInt8], keyID: Digest32) -> [UInt8] {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: root),
            salt: keyID.bytes,
            info: Array("EnclaveKit.seal.blob.v1".utf8),
            outputByteCount: 32
        ).withUnsafeBytes { Array($0) }
    }

    /// Seal `plaintext` as a blob: header, random nonce, ciphertext, tag. The header is the GCM additional data.
    package static func sealBlob(_ plaintext: [UInt8], header: SealedHeader, key: [UInt8]) throws -> [UInt8] {
        let headerBytes = header.bytes
        let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key), authenticating: headerBytes)
        // `combined` is nonce ‖ ciphertext ‖ tag. Copy through a raw buffer: appending `Data` as a sequence goes
        // byte by byte.
        var out = headerBytes
        out.reserveCapacity(headerBytes.count + nonceSize + plaintext.count + tagSize)
        guard let combined = box.combined else { throw EnclaveError.sandboxFailed("AES-GCM nonce of unexpected size") }
        combined.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Open a blob whose header was parsed from `blob` (body at `bodyStart`).
    package static func openBlob(_ blob: [UInt8], bodyStart: Int, key: [UInt8]) throws(EnclaveError) -> [UInt8] {
        guard blob.count - bodyStart >= nonceSize + tagSize else { throw .malformedInput("sealed blob is truncated") }
        do {
            let box = try AES.GCM.SealedBox(combined: blob[bodyStart...])
            let plaintext = try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: blob[0..<bodyStart])
            return plaintext.withUnsafeBytes { Array($0) }
        } catch {
            throw .invalidSignature("sealed blob does not authenticate: wrong enclave, wrong key, or tampered")
        }
    }

    /// The nonce of chunk `index`: a final-chunk flag, then the index (big-endian). Keys are unique per stream.
    static func chunkNonce(_ index: UInt64, final: Bool) throws -> AES.GCM.Nonce {
        var bytes: [UInt8] = [final ? 1 : 0, 0, 0, 0]
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: index >> UInt64(shift)))
        }
        return try AES.GCM.Nonce(data: bytes)
    }

    /// Additional data of every chunk: SHA-256 of the stream's header (binds chunks to their stream).
    static func chunkAAD(_ header: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: header)) }
}

/// Seals a stream chunk by chunk: `u32` length then ciphertext and tag for each, the last one flagged final.
package struct StreamSealer: Sendable {
    package let header: [UInt8]
    private let key: SymmetricKey
    private let aad: [UInt8]
    private var index: UInt64 = 0
    private var finished = false

    package init(header: SealedHeader, key: [UInt8]) {
        self.header = header.bytes
        self.key = SymmetricKey(data: key)
        self.aad = SealingCipher.chunkAAD(self.header)
    }

    /// Seal one chunk (at most the header's chunk size); `final` for the last (possibly empty) one.
    package mutating func seal(_ chunk: ArraySlice<UInt8>, final: Bool) throws -> [UInt8] {
        precondition(!finished, "the stream is already finished")
        let box = try AES.GCM.seal(
            chunk,
            using: key,
            nonce: SealingCipher.chunkNonce(index, final: final),
            authenticating: aad
        )
        index += 1
        finished = final
        var out = ByteWriter()
        out.integer(UInt32(box.ciphertext.count + SealingCipher.tagSize))
        var bytes = out.bytes
        bytes.reserveCapacity(4 + box.ciphertext.count + SealingCipher.tagSize)
        box.ciphertext.withUnsafeBytes { bytes.append(contentsOf: $0) }
        box.tag.withUnsafeBytes { bytes.append(contentsOf: $0) }
        return bytes
    }
}

/// Opens a sealed stream fed in arbitrary pieces; detects truncation, reordering, and chunks from another stream.
package struct StreamUnsealer: Sendable {
    private let key: SymmetricKey
    private let aad: [UInt8]
    private let chunkSize: Int
    private var buffer: [UInt8] = []
    private var index: UInt64 = 0
    package private(set) var finished = false

    package init(header: SealedHeader, key: [UInt8]) {
        self.key = SymmetricKey(data: key)
        self.aad = SealingCipher.chunkAAD(header.bytes)
        self.chunkSize = Int(header.chunkSize)
    }

    /// Feed bytes that follow the header; returns the plaintext of every chunk completed.
    package mutating func feed(_ bytes: some Collection<UInt8>) throws(EnclaveError) -> [UInt8] {
        buffer.append(contentsOf: bytes)
        var plaintext: [UInt8] = []
        var position = 0
        while buffer.count - position >= 4 {
            guard !finished else { throw .malformedInput("data after the final chunk of a sealed stream") }
            var reader = ByteReader(Array(buffer[position..<position + 4]))
            let length = Int(try reader.integer(UInt32.self, "chunk length"))
            guard length >= SealingCipher.tagSize, length <= chunkSize + SealingCipher.tagSize else {
                throw .malformedInput("sealed chunk length \(length) out of range")
            }
            guard buffer.count - position - 4 >= length else { break }
            let body = buffer[(position + 4)..<(position + 4 + length)]
            plaintext += try open(body)
            position += 4 + length
        }
        buffer.removeFirst(position)
        return plaintext
    }

    private mutating func open(_ body: ArraySlice<UInt8>) throws(EnclaveError) -> [UInt8] {
        let split = body.endIndex - SealingCipher.tagSize
        // Try as a middle chunk, then as the final one: the flag is in the nonce, so only the right guess opens.
        for final in [false, true] {
            guard let nonce = try? SealingCipher.chunkNonce(index, final: final),
                let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: body[..<split], tag: body[split...]),
                let plain = try? AES.GCM.open(box, using: key, authenticating: aad)
            else { continue }
            index += 1
            finished = final
            return plain.withUnsafeBytes { Array($0) }
        }
        throw .invalidSignature("sealed chunk \(index) does not authenticate: dropped, reordered, swapped or tampered")
    }

    /// Call at the end of input: the final chunk must have been seen and nothing may be left over.
    package func finish() throws(EnclaveError) {
        guard finished else { throw .malformedInput("sealed stream is truncated: no final chunk") }
        guard buffer.isEmpty else { throw .malformedInput("trailing bytes after a sealed stream") }
    }
}
