public import Crypto
internal import _CryptoExtras

/// AES key wrap (RFC 3394) and AES key wrap with padding (RFC 5649), on AES's block function.
///
/// swift-crypto's `AES.KeyWrap` is RFC 3394 only (input a multiple of 8 bytes, the fixed IV `A6A6…`); the
/// `RSA_AES_KEY_WRAP` formats wrap RSA and EC private keys (PKCS #8, any length), which need RFC 5649's padding and
/// alternative IV. Both are implemented here on `AES.permute` (one AES block), so one code path serves both.
public enum AESKeyWrap {
    /// The most bytes wrapped (64 KiB): far above any key.
    public static let maximumInput = 64 * 1024

    /// RFC 5649: wraps `plaintext` (1 … ``maximumInput`` bytes) under `key` (AES-128/192/256).
    public static func wrapWithPadding(
        _ plaintext: [UInt8],
        using key: SymmetricKey
    ) throws(KeyReleaseFormatError)
        -> [UInt8]
    {
        guard !plaintext.isEmpty, plaintext.count <= maximumInput else {
            throw .malformed("AES key wrap with padding takes 1 to \(maximumInput) bytes")
        }
        let length = UInt32(plaintext.count)
        let aiv: [UInt8] = [0xA6, 0x59, 0x59, 0xA6] + bigEndian(length)
        let padded = plaintext + [UInt8](repeating: 0, count: (8 - plaintext.count % 8) % 8)
        if padded.count == 8 {
            var block = aiv + padded
            try permute(&block, key: key)
            return block
        }
        return try wrapBlocks(padded, iv: aiv, key: key)
    }

    /// RFC 5649: unwraps what ``wrapWithPadding(_:using:)`` made; checks the alternative IV, the length and the
    /// zero padding.
    public static func unwrapWithPadding(
        _ ciphertext: [UInt8],
        using key: SymmetricKey
    )
        throws(KeyReleaseFormatError) -> [UInt8]
    {
        guard ciphertext.count >= 16, ciphertext.count % 8 == 0, ciphertext.count <= maximumInput + 16 else {
            throw .malformed("an RFC 5649 wrapped key is a multiple of 8 bytes, at least 16")
        }
        var iv: [UInt8]
        var padded: [UInt8]
        if ciphertext.count == 16 {
            var block = ciphertext
            try inversePermute(&block, key: key)
            iv = Array(block[0..<8])
            padded = Array(block[8..<16])
        } else {
            (iv, padded) = try unwrapBlocks(ciphertext, key: key)
        }
        guard iv[0] == 0xA6, iv[1] == 0x59, iv[2] == 0x59, iv[3] == 0xA6 else {
            throw .integrity("the AES key wrap's check value does not match")
        }
        let length = Int(iv[4]) << 24 | Int(iv[5]) << 16 | Int(iv[6]) << 8 | Int(iv[7])
        guard length > padded.count - 8, length <= padded.count,
            padded[length...].allSatisfy({ $0 == 0 })
        else { throw .integrity("the AES key wrap's length or padding does not match") }
        return Array(padded[..<length])
    }

    /// RFC 3394 with the default IV (`A6A6A6A6A6A6A6A6`): `plaintext` is a multiple of 8 bytes, at least 16.
    public static func wrap(_ plaintext: [UInt8], using key: SymmetricKey) throws(KeyReleaseFormatError) -> [UInt8] {
        guard plaintext.count >= 16, plaintext.count % 8 == 0, plaintext.count <= maximumInput else {
            throw .malformed("AES key wrap takes a multiple of 8 bytes, at least 16")
        }
        return try wrapBlocks(plaintext, iv: defaultIV, key: key)
    }

    /// RFC 3394 unwrap; checks the default IV.
    public static func unwrap(
        _ ciphertext: [UInt8],
        using key: SymmetricKey
    ) throws(KeyReleaseFormatError)
        -> [UInt8]
    {
        guard ciphertext.count >= 24, ciphertext.count % 8 == 0, ciphertext.count <= maximumInput + 8 else {
            throw .malformed("an RFC 3394 wrapped key is a multiple of 8 bytes, at least 24")
        }
        let (iv, plaintext) = try unwrapBlocks(ciphertext, key: key)
        guard iv == defaultIV else { throw .integrity("the AES key wrap's check value does not match") }
        return plaintext
    }

    static let defaultIV: [UInt8] = [UInt8](repeating: 0xA6, count: 8)

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func bigEndian64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(value >> (56 - 8 * UInt64($0)) & 0xFF) }
    }

    static func permute(_ block: inout [UInt8], key: SymmetricKey) throws(KeyReleaseFormatError) {
        do { try AES.permute(&block, key: key) } catch { throw .unsupported("the key wrap key is not an AES key") }
    }

    static func inversePermute(_ block: inout [UInt8], key: SymmetricKey) throws(KeyReleaseFormatError) {
        do { try AES.inversePermute(&block, key: key) } catch {
            throw .unsupported("the key wrap key is not an AES key")
        }
    }

    /// RFC 3394 §2.2.1, index based.
    static func wrapBlocks(
        _ plaintext: [UInt8],
        iv: [UInt8],
        key: SymmetricKey
    ) throws(KeyReleaseFormatError)
        -> [UInt8]
    {
        let n = plaintext.count / 8
        var a = iv
        var r = (0..<n).map { Array(plaintext[$0 * 8..<$0 * 8 + 8]) }
        var block = [UInt8](repeating: 0, count: 16)
        for j in 0..<6 {
            for i in 0..<n {
                block.replaceSubrange(0..<8, with: a)
                block.replaceSubrange(8..<16, with: r[i])
                try permute(&block, key: key)
                let t = bigEndian64(UInt64(n * j + i + 1))
                a = (0..<8).map { block[$0] ^ t[$0] }
                r[i] = Array(block[8..<16])
            }
        }
        return a + r.flatMap { $0 }
    }

    /// RFC 3394 §2.2.2: the recovered IV and plaintext.
    static func unwrapBlocks(
        _ ciphertext: [UInt8],
        key: SymmetricKey
    ) throws(KeyReleaseFormatError) -> (
        [UInt8], [UInt8]
    ) {
        let n = ciphertext.count / 8 - 1
        var a = Array(ciphertext[0..<8])
        var r = (0..<n).map { Array(ciphertext[($0 + 1) * 8..<($0 + 2) * 8]) }
        var block = [UInt8](repeating: 0, count: 16)
        for j in stride(from: 5, through: 0, by: -1) {
            for i in stride(from: n - 1, through: 0, by: -1) {
                let t = bigEndian64(UInt64(n * j + i + 1))
                block.replaceSubrange(0..<8, with: (0..<8).map { a[$0] ^ t[$0] })
                block.replaceSubrange(8..<16, with: r[i])
                try inversePermute(&block, key: key)
                a = Array(block[0..<8])
                r[i] = Array(block[8..<16])
            }
        }
        return (a, r.flatMap { $0 })
    }
}
