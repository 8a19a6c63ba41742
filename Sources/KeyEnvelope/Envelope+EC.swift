public import Crypto
public import EnclaveCore
internal import KeyReleaseFormats

extension Envelope {
    /// `dataKey` wrapped to an EC P-256 or P-384 public key (`crv`, coordinates `x` and `y` as big-endian bytes) as a
    /// compact JWE `ECDH-ES+A256KW` / `A256GCM` (an ephemeral key agreement, so no broker is needed): what
    /// `enclave keys encrypt` does with an EC broker key's public part. The header's wrapped key holds the JWE's UTF-8.
    /// - Throws: `EnclaveError` `malformedInput` for another curve or a point that is not on it.
    public static func wrapECDHES(
        _ dataKey: SymmetricKey,
        crv: String,
        x: [UInt8],
        y: [UInt8]
    ) throws(EnclaveError) -> [UInt8] {
        let target: WrapTarget
        switch crv {
        case "P-256":
            guard x.count == 32, y.count == 32, let key = try? P256.KeyAgreement.PublicKey(rawRepresentation: x + y)
            else { throw .malformedInput("the broker key's public part is not a P-256 point") }
            target = .p256(key)
        case "P-384":
            guard x.count == 48, y.count == 48, let key = try? P384.KeyAgreement.PublicKey(rawRepresentation: x + y)
            else { throw .malformedInput("the broker key's public part is not a P-384 point") }
            target = .p384(key)
        default:
            throw .malformedInput("an EC broker key's curve is P-256 or P-384, not \(crv)")
        }
        do {
            return Array(try ECDHESJWE.encrypt(dataKey.withUnsafeBytes { Array($0) }, to: target).utf8)
        } catch {
            throw .malformedInput("ECDH-ES+A256KW failed with the broker key: \(error)")
        }
    }

    /// A data key wrapped by ``wrapECDHES(_:crv:x:y:)``, unwrapped with the P-256 private key (an enclave that got
    /// the broker key released, or the broker itself).
    /// - Throws: `EnclaveError` `invalidSignature` when it does not unwrap to 32 bytes with this key.
    public static func unwrapECDHES(
        _ wrapped: [UInt8],
        with key: P256.KeyAgreement.PrivateKey
    ) throws(EnclaveError) -> SymmetricKey {
        try unwrapJWE(wrapped) { jwe throws(KeyReleaseFormatError) in try ECDHESJWE.decrypt(jwe, with: key).plaintext }
    }

    /// A data key wrapped by ``wrapECDHES(_:crv:x:y:)``, unwrapped with the P-384 private key.
    /// - Throws: `EnclaveError` `invalidSignature` when it does not unwrap to 32 bytes with this key.
    public static func unwrapECDHES(
        _ wrapped: [UInt8],
        with key: P384.KeyAgreement.PrivateKey
    ) throws(EnclaveError) -> SymmetricKey {
        try unwrapJWE(wrapped) { jwe throws(KeyReleaseFormatError) in try ECDHESJWE.decrypt(jwe, with: key).plaintext }
    }

    static func unwrapJWE(
        _ wrapped: [UInt8],
        _ decrypt: (String) throws(KeyReleaseFormatError) -> [UInt8]
    ) throws(EnclaveError) -> SymmetricKey {
        guard let jwe = String(validating: wrapped, as: UTF8.self) else {
            throw .malformedInput("the wrapped data key is not a JWE")
        }
        let bytes: [UInt8]
        do { bytes = try decrypt(jwe) } catch {
            throw .invalidSignature("the data key does not unwrap with this key (\(error.reason))")
        }
        guard bytes.count == 32 else { throw .invalidSignature("the unwrapped data key is not 32 bytes") }
        return SymmetricKey(data: bytes)
    }
}
