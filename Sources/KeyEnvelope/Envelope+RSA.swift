public import Crypto
public import EnclaveCore
public import _CryptoExtras

extension Envelope {
    /// `dataKey` wrapped with RSA-OAEP-256 to the RSA public key (`n`, `e` as big-endian bytes): what
    /// `enclave keys encrypt` does with an RSA broker key's public part.
    /// - Throws: `EnclaveError` `malformedInput` for a key that is not RSA of at least 2048 bits.
    public static func wrapRSAOAEP256(_ dataKey: SymmetricKey, n: [UInt8], e: [UInt8]) throws(EnclaveError) -> [UInt8] {
        let key: _RSA.Encryption.PublicKey
        do {
            key = try _RSA.Encryption.PublicKey(n: Array(n.drop { $0 == 0 }), e: e)
        } catch {
            throw .malformedInput("the broker key's public part is not an RSA key")
        }
        guard key.keySizeInBits >= 2048 else { throw .malformedInput("the broker key is shorter than 2048 bits") }
        do {
            return Array(try dataKey.withUnsafeBytes { try key.encrypt(Array($0), padding: .PKCS1_OAEP_SHA256) })
        } catch {
            throw .malformedInput("RSA-OAEP-256 failed with the broker key")
        }
    }

    /// A data key wrapped with RSA-OAEP-256, unwrapped with the RSA private key (an enclave that got the broker key
    /// released).
    /// - Throws: `EnclaveError` `invalidSignature` when it does not unwrap to 32 bytes.
    public static func unwrapRSAOAEP256(
        _ wrapped: [UInt8],
        with key: _RSA.Encryption.PrivateKey
    )
        throws(EnclaveError) -> SymmetricKey
    {
        let bytes: [UInt8]
        do {
            bytes = Array(try key.decrypt(wrapped, padding: .PKCS1_OAEP_SHA256))
        } catch {
            throw .invalidSignature("the data key does not unwrap with this key")
        }
        guard bytes.count == 32 else { throw .invalidSignature("the unwrapped data key is not 32 bytes") }
        return SymmetricKey(data: bytes)
    }
}
