internal import CCryptoBoringSSL
internal import Crypto

/// An AES-256-GCM key schedule owned by BoringSSL (`EVP_AEAD_CTX`), sealing and opening straight into the caller's
/// buffers.
///
/// This is the AEAD that swift-crypto's `AES.GCM` runs on (the same package's BoringSSL, reached through its
/// `CCryptoBoringSSL` module). `AES.GCM` returns its output as a fresh `Data` and copies the ciphertext into its
/// sealed box; sealing through it and then into our `[UInt8]` blob costs two more passes over the data than the
/// encryption itself, which at AES-NI/VAES speed is most of the time. Here one pass writes the ciphertext and tag
/// where they belong. The context is freed on deinit; BoringSSL takes it as `const` for sealing and opening, so
/// one context may serve several threads.
final class GCMContext: @unchecked Sendable {  // unchecked: the context is immutable after init (BoringSSL: const)
    private let context: UnsafeMutablePointer<EVP_AEAD_CTX>

    static let keySize = 32
    static let nonceSize = 12
    static let tagSize = 16

    /// A context for `key` (256 bits).
    init(key: SymmetricKey) throws(EnclaveError) {
        guard key.bitCount == 256 else { throw .malformedInput("a sealing key is 256 bits") }
        let created = key.withUnsafeBytes { bytes in
            CCryptoBoringSSL_EVP_AEAD_CTX_new(
                CCryptoBoringSSL_EVP_aead_aes_256_gcm(),
                bytes.bindMemory(to: UInt8.self).baseAddress,
                bytes.count,
                Self.tagSize
            )
        }
        guard let created else { throw .limitExceeded("AES-GCM context could not be allocated") }
        context = created
    }

    deinit { CCryptoBoringSSL_EVP_AEAD_CTX_free(context) }

    /// Encrypt `plaintext` into `output` (exactly `plaintext.count + tagSize` bytes: ciphertext then tag).
    /// `output` may start where `plaintext` starts (in place), but must not otherwise overlap it.
    func seal(
        _ plaintext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        nonce: UnsafeRawBufferPointer,
        authenticating additionalData: UnsafeRawBufferPointer
    ) -> Bool {
        precondition(output.count == plaintext.count + Self.tagSize && nonce.count == Self.nonceSize)
        var written = 0
        let ok = CCryptoBoringSSL_EVP_AEAD_CTX_seal(
            context,
            output.bindMemory(to: UInt8.self).baseAddress,
            &written,
            output.count,
            nonce.bindMemory(to: UInt8.self).baseAddress,
            nonce.count,
            plaintext.bindMemory(to: UInt8.self).baseAddress,
            plaintext.count,
            additionalData.bindMemory(to: UInt8.self).baseAddress,
            additionalData.count
        )
        return ok == 1 && written == output.count
    }

    /// Check and decrypt `sealed` (ciphertext then tag) into `output` (exactly `sealed.count - tagSize` bytes).
    /// On failure `output` is zeroed: nothing unauthenticated is left behind.
    func open(
        _ sealed: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        nonce: UnsafeRawBufferPointer,
        authenticating additionalData: UnsafeRawBufferPointer
    ) -> Bool {
        precondition(sealed.count >= Self.tagSize && output.count == sealed.count - Self.tagSize)
        precondition(nonce.count == Self.nonceSize)
        var written = 0
        let ok = CCryptoBoringSSL_EVP_AEAD_CTX_open(
            context,
            output.bindMemory(to: UInt8.self).baseAddress,
            &written,
            output.count,
            nonce.bindMemory(to: UInt8.self).baseAddress,
            nonce.count,
            sealed.bindMemory(to: UInt8.self).baseAddress,
            sealed.count,
            additionalData.bindMemory(to: UInt8.self).baseAddress,
            additionalData.count
        )
        guard ok == 1, written == output.count else {
            CCryptoBoringSSL_OPENSSL_cleanse(output.baseAddress, output.count)
            return false
        }
        return true
    }

    /// Fill `buffer` from BoringSSL's generator (the one `AES.GCM.Nonce()` and `SymmetricKey(size:)` use).
    static func random(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        precondition(CCryptoBoringSSL_RAND_bytes(base.assumingMemoryBound(to: UInt8.self), buffer.count) == 1)
    }

    /// HKDF-SHA256 (RFC 5869) of `secret` with `salt` and `info`, as swift-crypto's `HKDF<SHA256>.deriveKey` computes
    /// it, into a 256-bit key; the intermediate buffer is wiped.
    static func hkdf(secret: SymmetricKey, salt: [UInt8], info: [UInt8]) -> SymmetricKey {
        withUnsafeTemporaryAllocation(byteCount: keySize, alignment: 16) { out in
            let ok = secret.withUnsafeBytes { secret in
                salt.withUnsafeBufferPointer { salt in
                    info.withUnsafeBufferPointer { info in
                        CCryptoBoringSSL_HKDF(
                            out.bindMemory(to: UInt8.self).baseAddress,
                            keySize,
                            CCryptoBoringSSL_EVP_sha256(),
                            secret.bindMemory(to: UInt8.self).baseAddress,
                            secret.count,
                            salt.baseAddress,
                            salt.count,
                            info.baseAddress,
                            info.count
                        )
                    }
                }
            }
            precondition(ok == 1, "HKDF-SHA256 failed")
            let key = SymmetricKey(data: UnsafeRawBufferPointer(out))
            CCryptoBoringSSL_OPENSSL_cleanse(out.baseAddress, out.count)
            return key
        }
    }
}
