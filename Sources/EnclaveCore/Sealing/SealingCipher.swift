internal import CCryptoBoringSSL
package import Crypto

/// AES-256-GCM over sealed blobs and streams, given the derived key. The enclave runtime fetches the key from the
/// platform; this type never sees the platform secret.
///
/// Blob layout: header, 12-byte random nonce, ciphertext, 16-byte tag; the header is the GCM additional data.
/// Everything is written in place into one output array (see ``GCMContext``): no copy of the plaintext or the
/// ciphertext beyond the encryption's own pass.
package enum SealingCipher {
    static let nonceSize = GCMContext.nonceSize
    static let tagSize = GCMContext.tagSize
    static let blobInfo = Array("EnclaveKit.seal.blob.v1".utf8)

    /// The key of one blob or stream: HKDF-SHA256 from the (policy, security version) root, salted with the blob's
    /// key ID, info `EnclaveKit.seal.blob.v1`.
    package static func blobKey(root: SymmetricKey, keyID: Digest32) -> SymmetricKey {
        GCMContext.hkdf(secret: root, salt: keyID.bytes, info: blobInfo)
    }

    /// A fresh random key ID for a blob or stream header, from BoringSSL's generator (the nonces' own).
    /// `SymmetricKey(size:)` draws from `SystemRandomNumberGenerator`, one `getrandom` system call per 8 bytes: four
    /// per 32-byte ID, each a round trip through the sandbox's filter, a measurable share of sealing a 4 KiB blob.
    package static func randomKeyID() throws(EnclaveError) -> Digest32 {
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeMutableBytes { GCMContext.random($0) }
        return try Digest32(bytes: bytes)
    }

    /// Seal `plaintext` as a blob: header, random nonce, ciphertext, tag. The header is the GCM additional data.
    package static func sealBlob(
        _ plaintext: [UInt8],
        header: SealedHeader,
        key: SymmetricKey
    ) throws(EnclaveError) -> [UInt8] {
        let context = try GCMContext(key: key)
        let headerBytes = header.bytes
        let total = headerBytes.count + nonceSize + plaintext.count + tagSize
        var sealed = true
        let out = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            headerBytes.withUnsafeBytes { raw.copyMemory(from: $0) }
            let nonce = UnsafeMutableRawBufferPointer(rebasing: raw[headerBytes.count..<headerBytes.count + nonceSize])
            GCMContext.random(nonce)
            let body = UnsafeMutableRawBufferPointer(rebasing: raw[(headerBytes.count + nonceSize)...])
            sealed = plaintext.withUnsafeBytes { plaintext in
                context.seal(
                    plaintext,
                    into: body,
                    nonce: UnsafeRawBufferPointer(nonce),
                    authenticating: UnsafeRawBufferPointer(rebasing: raw[..<headerBytes.count])
                )
            }
            initialized = total
        }
        guard sealed else { throw .sandboxFailed("AES-GCM sealing failed") }
        return out
    }

    /// Open a blob whose header was parsed from `blob` (body at `bodyStart`).
    package static func openBlob(_ blob: [UInt8], bodyStart: Int, key: SymmetricKey) throws(EnclaveError) -> [UInt8] {
        guard bodyStart >= 0, blob.count - bodyStart >= nonceSize + tagSize else {
            throw .malformedInput("sealed blob is truncated")
        }
        let context = try GCMContext(key: key)
        let count = blob.count - bodyStart - nonceSize - tagSize
        var opened = true
        let plaintext = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            opened = blob.withUnsafeBytes { blob in
                context.open(
                    UnsafeRawBufferPointer(rebasing: blob[(bodyStart + nonceSize)...]),
                    into: UnsafeMutableRawBufferPointer(buffer),
                    nonce: UnsafeRawBufferPointer(rebasing: blob[bodyStart..<bodyStart + nonceSize]),
                    authenticating: UnsafeRawBufferPointer(rebasing: blob[..<bodyStart])
                )
            }
            initialized = count
        }
        guard opened else {
            throw .invalidSignature("sealed blob does not authenticate: wrong enclave, wrong key, or tampered")
        }
        return plaintext
    }

    /// Write the nonce of chunk `index` into `nonce` (12 bytes): a final-chunk flag, three zero bytes, then the
    /// index (big-endian). Keys are unique per stream.
    static func writeChunkNonce(_ index: UInt64, final: Bool, into nonce: UnsafeMutableRawBufferPointer) {
        nonce[0] = final ? 1 : 0
        nonce[1] = 0
        nonce[2] = 0
        nonce[3] = 0
        for byte in 0..<8 { nonce[4 + byte] = UInt8(truncatingIfNeeded: index >> UInt64(56 - 8 * byte)) }
    }

    /// Additional data of every chunk: SHA-256 of the stream's header (binds chunks to their stream).
    static func chunkAAD(_ header: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: header)) }
}
