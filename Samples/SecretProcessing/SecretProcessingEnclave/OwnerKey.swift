import Crypto
import EnclaveCore
import EnclaveKeyRelease
import KeyEnvelope
import KeyReleaseFormats
import _CryptoExtras

/// The released broker key, as the envelope format uses it.
struct OwnerKey {
    enum Secret {
        case aes(SymmetricKey)
        case rsa(_RSA.Encryption.PrivateKey)
        case p256(P256.KeyAgreement.PrivateKey)
        case p384(P384.KeyAgreement.PrivateKey)
    }

    let secret: Secret

    init(_ released: ReleasedKey) throws(EnclaveError) {
        switch released.keyType {
        case "oct-HSM", "oct":
            guard released.bytes.count == 32 else { throw .malformedInput("the released AES key is not 32 bytes") }
            secret = .aes(SymmetricKey(data: released.bytes))
        case "RSA-HSM", "RSA":
            guard let key = try? _RSA.Encryption.PrivateKey(derRepresentation: released.bytes) else {
                throw .malformedInput("the released RSA key does not parse")
            }
            secret = .rsa(key)
        case "EC-HSM", "EC":
            if let key = try? P256.Signing.PrivateKey(derRepresentation: released.bytes),
                let agreement = try? P256.KeyAgreement.PrivateKey(rawRepresentation: key.rawRepresentation)
            {
                secret = .p256(agreement)
            } else if let key = try? P384.Signing.PrivateKey(derRepresentation: released.bytes),
                let agreement = try? P384.KeyAgreement.PrivateKey(rawRepresentation: key.rawRepresentation)
            {
                secret = .p384(agreement)
            } else {
                throw .malformedInput("the released EC key is not P-256 or P-384")
            }
        default:
            throw .malformedInput("the released key's type \(released.keyType) is not one the envelope uses")
        }
    }

    /// How a data key is wrapped to this key.
    var algorithm: EnvelopeHeader.Algorithm {
        switch secret {
        case .aes: .a256KW
        case .rsa: .rsaOAEP256
        case .p256, .p384: .ecdhESA256KW
        }
    }

    /// The file's data key, unwrapped.
    func unwrap(_ header: EnvelopeHeader) throws(EnclaveError) -> SymmetricKey {
        guard header.algorithm == algorithm else {
            throw .invalidSignature("the file's data key is wrapped with \(header.algorithm.name), not for this key")
        }
        switch secret {
        case .aes(let key):
            guard let bytes = try? AESKeyWrap.unwrap(header.wrappedKey, using: key), bytes.count == 32 else {
                throw .invalidSignature("the data key does not unwrap with this key")
            }
            return SymmetricKey(data: bytes)
        case .rsa(let key): return try Envelope.unwrapRSAOAEP256(header.wrappedKey, with: key)
        case .p256(let key): return try Envelope.unwrapECDHES(header.wrappedKey, with: key)
        case .p384(let key): return try Envelope.unwrapECDHES(header.wrappedKey, with: key)
        }
    }

    /// A new data key wrapped to this key (its public part, or the AES key).
    func wrap(_ dataKey: SymmetricKey) throws(EnclaveError) -> [UInt8] {
        switch secret {
        case .aes(let key):
            do { return try AESKeyWrap.wrap(dataKey.withUnsafeBytes { Array($0) }, using: key) } catch {
                throw .malformedInput("AES key wrap failed")
            }
        case .rsa(let key):
            guard let primitives = try? key.publicKey.getKeyPrimitives() else {
                throw .malformedInput("the RSA key has no public part")
            }
            return try Envelope.wrapRSAOAEP256(
                dataKey,
                n: Array(primitives.modulus),
                e: Array(primitives.publicExponent)
            )
        case .p256(let key):
            let raw = Array(key.publicKey.rawRepresentation)
            return try Envelope.wrapECDHES(dataKey, crv: "P-256", x: Array(raw.prefix(32)), y: Array(raw.suffix(32)))
        case .p384(let key):
            let raw = Array(key.publicKey.rawRepresentation)
            return try Envelope.wrapECDHES(dataKey, crv: "P-384", x: Array(raw.prefix(48)), y: Array(raw.suffix(48)))
        }
    }
}
