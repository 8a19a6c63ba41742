internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import KeyBrokerInterface
internal import KeyReleaseFormats
internal import _CryptoExtras

/// A key's secret part, inside the broker only.
///
/// Bytes form (what the at-rest envelope encrypts and a release wraps): AES, the raw 32 bytes; RSA and EC, the
/// PKCS #8 DER of the private key.
struct KeyMaterial: @unchecked Sendable {  // swift-crypto keys are immutable values
    enum Secret {
        case aes(SymmetricKey)
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
    }

    let type: BrokerKeyType
    let secret: Secret

    /// A new key of `type`.
    static func generate(_ type: BrokerKeyType) throws(KeyBrokerError) -> KeyMaterial {
        do {
            switch type {
            case .aes256: return KeyMaterial(type: type, secret: .aes(SymmetricKey(size: .bits256)))
            case .rsa2048: return KeyMaterial(type: type, secret: .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048)))
            case .rsa3072: return KeyMaterial(type: type, secret: .rsa(try _RSA.Signing.PrivateKey(keySize: .bits3072)))
            case .ecP256: return KeyMaterial(type: type, secret: .p256(P256.Signing.PrivateKey()))
            case .ecP384: return KeyMaterial(type: type, secret: .p384(P384.Signing.PrivateKey()))
            }
        } catch { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the key could not be generated") }
    }

    /// A key from its bytes form; refused unless it is exactly `type`.
    init(bytes: [UInt8], type: BrokerKeyType) throws(KeyBrokerError) {
        let refused = KeyBrokerError(KeyBrokerError.importRefused, "the key material is not a \(type.rawValue) key")
        self.type = type
        switch type {
        case .aes256:
            guard bytes.count == 32 else { throw refused }
            secret = .aes(SymmetricKey(data: bytes))
        case .rsa2048, .rsa3072:
            guard let key = try? _RSA.Signing.PrivateKey(derRepresentation: bytes), key.keySizeInBits == type.keySize
            else { throw refused }
            secret = .rsa(key)
        case .ecP256:
            guard let key = try? P256.Signing.PrivateKey(derRepresentation: bytes) else { throw refused }
            secret = .p256(key)
        case .ecP384:
            guard let key = try? P384.Signing.PrivateKey(derRepresentation: bytes) else { throw refused }
            secret = .p384(key)
        }
    }

    private init(type: BrokerKeyType, secret: Secret) {
        self.type = type
        self.secret = secret
    }

    /// The bytes form.
    var bytes: [UInt8] {
        switch secret {
        case .aes(let key): key.withUnsafeBytes { Array($0) }
        case .rsa(let key): Array(key.pkcs8DERRepresentation)
        case .p256(let key): Array(key.derRepresentation)
        case .p384(let key): Array(key.derRepresentation)
        }
    }

    /// The public part as JWK JSON text (`kid` = `keyID`), `nil` for AES.
    func publicJWK(keyID: String) -> String? {
        var members: [String: TokenValueLite] = ["kid": .string(keyID), "kty": .string(type.keyVaultType)]
        switch secret {
        case .aes:
            return nil
        case .rsa(let key):
            guard let primitives = try? key.publicKey.getKeyPrimitives() else { return nil }
            members["n"] = .string(Base64URL.encode(Array(primitives.modulus.drop { $0 == 0 })))
            members["e"] = .string(Base64URL.encode(Array(primitives.publicExponent.drop { $0 == 0 })))
        case .p256(let key):
            let raw = Array(key.publicKey.rawRepresentation)
            members["crv"] = .string("P-256")
            members["x"] = .string(Base64URL.encode(raw.prefix(32)))
            members["y"] = .string(Base64URL.encode(raw.suffix(32)))
        case .p384(let key):
            let raw = Array(key.publicKey.rawRepresentation)
            members["crv"] = .string("P-384")
            members["x"] = .string(Base64URL.encode(raw.prefix(48)))
            members["y"] = .string(Base64URL.encode(raw.suffix(48)))
        }
        return TokenValueLite.json(members)
    }

    /// The default `key_ops` of a type: every operation of the type for a key the operator creates (or one imported
    /// without a release policy); without `decrypt` and `unwrapKey` for a key imported under a release policy
    /// (`releasable`), so that only the policy hands out what it protects unless its owner names those operations.
    static func defaultOperations(_ type: BrokerKeyType, releasable: Bool = false) -> [String] {
        let all: [String] =
            switch type {
            case .aes256: ["encrypt", "decrypt", "wrapKey", "unwrapKey"]
            case .rsa2048, .rsa3072: ["encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"]
            // `unwrapKey`: an ECDH-ES+A256KW JWE to the key unwraps in the broker (`enclave keys decrypt`).
            case .ecP256, .ecP384: ["sign", "verify", "unwrapKey"]
            }
        return releasable ? all.filter { !ImportIntent.unwrapOperations.contains($0) } : all
    }
}

/// A JSON string/array value written with sorted members (the broker's own small JSON writer for JWKs).
enum TokenValueLite {
    case string(String)

    static func json(_ members: [String: TokenValueLite]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var plain: [String: String] = [:]
        for (key, value) in members {
            if case .string(let text) = value { plain[key] = text }
        }
        return String(decoding: (try? encoder.encode(plain)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
