internal import Crypto
public import _CryptoExtras

/// PKCS #11 `CKM_RSA_AES_KEY_WRAP` as Azure Key Vault's `RSA_AES_KEY_WRAP_256` uses it: a fresh AES-256 key
/// encrypted with RSA-OAEP (SHA-256, MGF1 SHA-256), followed by the key material wrapped under that AES key with
/// AES key wrap with padding (RFC 5649). What is wrapped: the raw bytes of an AES key, the PKCS #8 DER of an RSA or
/// EC private key.
public enum RSAAESKeyWrap {
    /// Wraps `keyMaterial` to `publicKey`.
    public static func wrap(
        _ keyMaterial: [UInt8],
        to publicKey: _RSA.Encryption.PublicKey
    )
        throws(KeyReleaseFormatError) -> [UInt8]
    {
        let ephemeral = SymmetricKey(size: .bits256)
        let encryptedKey: [UInt8]
        do {
            encryptedKey = Array(
                try ephemeral.withUnsafeBytes { bytes in
                    try publicKey.encrypt(Array(bytes), padding: .PKCS1_OAEP_SHA256)
                }
            )
        } catch { throw .unsupported("RSA-OAEP-256 encryption failed with the target key") }
        return encryptedKey + (try AESKeyWrap.wrapWithPadding(keyMaterial, using: ephemeral))
    }

    /// Unwraps what ``wrap(_:to:)`` made with the private key.
    public static func unwrap(
        _ ciphertext: [UInt8],
        with privateKey: _RSA.Encryption.PrivateKey
    )
        throws(KeyReleaseFormatError) -> [UInt8]
    {
        let modulusBytes = privateKey.keySizeInBits / 8
        guard ciphertext.count >= modulusBytes + 16 else {
            throw .malformed("the wrapped key is shorter than the RSA block and one AES key wrap")
        }
        let aesKey: SymmetricKey
        do {
            let decrypted = try privateKey.decrypt(ciphertext.prefix(modulusBytes), padding: .PKCS1_OAEP_SHA256)
            guard decrypted.count == 32 else { throw KeyReleaseFormatError.integrity("not an AES-256 key") }
            aesKey = SymmetricKey(data: decrypted)
        } catch { throw .integrity("the RSA-OAEP-256 block does not decrypt with this key") }
        return try AESKeyWrap.unwrapWithPadding(Array(ciphertext.dropFirst(modulusBytes)), using: aesKey)
    }
}
