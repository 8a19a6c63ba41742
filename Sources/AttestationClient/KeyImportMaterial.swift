public import Crypto
public import EnclaveCore
internal import Foundation
public import _CryptoExtras

/// A key a data owner brings to the key broker (bring your own key): its type and its bytes in the form the broker
/// enclave unwraps — an AES key's raw 32 bytes, an RSA or EC private key's PKCS #8 DER. Only ever sent wrapped to
/// the broker enclave's import key.
public struct KeyImportMaterial: Sendable {
    /// `oct` (AES-256), `RSA` (2048 or 3072 bits), `EC` (P-256 or P-384).
    public let kty: String
    /// An EC key's curve (`P-256`, `P-384`).
    public let curve: String?
    /// An RSA key's modulus (big-endian, no leading zeros): tells the broker the key's size.
    public let modulus: [UInt8]?
    /// The bytes the import key wraps.
    let bytes: [UInt8]

    /// The broker's name of the key's type (`oct-256`, `RSA-2048`, `RSA-3072`, `EC-P-256`, `EC-P-384`), as the broker
    /// derives it from what the import request states: hashed into the owner's import intent.
    public var brokerType: String {
        switch curve {
        case "P-256"?: return "EC-P-256"
        case "P-384"?: return "EC-P-384"
        default: break
        }
        if let modulus { return modulus.drop { $0 == 0 }.count == 384 ? "RSA-3072" : "RSA-2048" }
        return "oct-256"
    }

    /// An AES-256 key.
    /// - Throws: `EnclaveError` `malformedInput` unless `key` is 32 bytes.
    public static func aes(_ key: [UInt8]) throws(EnclaveError) -> KeyImportMaterial {
        guard key.count == 32 else { throw .malformedInput("an AES key to import is 32 bytes, not \(key.count)") }
        return KeyImportMaterial(kty: "oct-HSM", curve: nil, modulus: nil, bytes: key)
    }

    /// An RSA private key of 2048 or 3072 bits.
    /// - Throws: `EnclaveError` `malformedInput` for another size.
    public static func rsa(_ key: _RSA.Signing.PrivateKey) throws(EnclaveError) -> KeyImportMaterial {
        guard key.keySizeInBits == 2048 || key.keySizeInBits == 3072 else {
            throw .malformedInput("an RSA key to import has 2048 or 3072 bits, not \(key.keySizeInBits)")
        }
        guard let primitives = try? key.publicKey.getKeyPrimitives() else {
            throw .malformedInput("the RSA key has no public part")
        }
        return KeyImportMaterial(
            kty: "RSA-HSM",
            curve: nil,
            modulus: Array(primitives.modulus.drop { $0 == 0 }),
            bytes: Array(key.pkcs8DERRepresentation)
        )
    }

    /// A P-256 private key.
    public static func p256(_ key: P256.Signing.PrivateKey) -> KeyImportMaterial {
        KeyImportMaterial(kty: "EC-HSM", curve: "P-256", modulus: nil, bytes: Array(key.derRepresentation))
    }

    /// A P-384 private key.
    public static func p384(_ key: P384.Signing.PrivateKey) -> KeyImportMaterial {
        KeyImportMaterial(kty: "EC-HSM", curve: "P-384", modulus: nil, bytes: Array(key.derRepresentation))
    }

    /// A key from a PEM document (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`): RSA 2048/3072, P-256 or
    /// P-384, whichever it is.
    /// - Throws: `EnclaveError` `malformedInput` when it is none of them.
    public static func pem(_ text: String) throws(EnclaveError) -> KeyImportMaterial {
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: text) { return p256(key) }
        if let key = try? P384.Signing.PrivateKey(pemRepresentation: text) { return p384(key) }
        if let key = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: text) { return try rsa(key) }
        throw .malformedInput("the PEM is not an RSA (2048/3072), P-256 or P-384 private key")
    }

    /// A key from a private JWK (`{"kty":"oct","k":…}`, `{"kty":"RSA","n","e","d","p","q",…}`,
    /// `{"kty":"EC","crv":"P-256"|"P-384","d","x","y"}`); an EC key's `x` and `y`, when given, must be its own.
    /// - Throws: `EnclaveError` `malformedInput` for anything else (a public-only key, a wrong size or curve).
    public static func jwk(_ json: [UInt8]) throws(EnclaveError) -> KeyImportMaterial {
        guard json.count <= 64 << 10,
            let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let kty = object["kty"] as? String
        else { throw .malformedInput("the key file is not a JSON web key with a kty") }
        func member(_ name: String) throws(EnclaveError) -> [UInt8] {
            guard let text = object[name] as? String, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
                throw .malformedInput("the \(kty) JWK has no private member \(name) (base64url)")
            }
            return bytes
        }
        switch kty {
        case "oct":
            return try aes(try member("k"))
        case "RSA":
            let key: _RSA.Signing.PrivateKey
            do {
                key = try _RSA.Signing.PrivateKey(
                    n: try member("n"),
                    e: try member("e"),
                    d: try member("d"),
                    p: try member("p"),
                    q: try member("q")
                )
            } catch let error as EnclaveError {
                throw error
            } catch {
                throw .malformedInput("the RSA JWK's numbers are not an RSA key")
            }
            return try rsa(key)
        case "EC":
            let d = try member("d")
            let material: KeyImportMaterial
            let raw: [UInt8]
            switch object["crv"] as? String {
            case "P-256":
                guard let key = try? P256.Signing.PrivateKey(rawRepresentation: d) else {
                    throw .malformedInput("the P-256 JWK's d is not a P-256 private key")
                }
                material = p256(key)
                raw = Array(key.publicKey.rawRepresentation)
            case "P-384":
                guard let key = try? P384.Signing.PrivateKey(rawRepresentation: d) else {
                    throw .malformedInput("the P-384 JWK's d is not a P-384 private key")
                }
                material = p384(key)
                raw = Array(key.publicKey.rawRepresentation)
            default:
                throw .malformedInput("an EC JWK's crv is P-256 or P-384")
            }
            if object["x"] != nil || object["y"] != nil {
                let half = raw.count / 2
                guard try member("x") == Array(raw.prefix(half)), try member("y") == Array(raw.suffix(half)) else {
                    throw .malformedInput("the EC JWK's x and y are not its d's public key")
                }
            }
            return material
        default:
            throw .malformedInput("a JWK to import has kty oct, RSA or EC, not \(kty)")
        }
    }

    /// A key from a file's bytes: a PEM private key, a private JWK, or exactly 32 raw bytes (an AES key).
    /// `kty` (`oct`, `RSA`, `EC`), when given, must be what the file holds.
    /// - Throws: `EnclaveError` `malformedInput` for anything else.
    public static func file(_ bytes: [UInt8], kty: String? = nil) throws(EnclaveError) -> KeyImportMaterial {
        let text = String(decoding: bytes.prefix(64 << 10), as: UTF8.self).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let material: KeyImportMaterial
        if bytes.count == 32 {
            // Exactly an AES key's size: raw bytes, whatever they start with (no PEM or JWK is this short).
            material = try aes(bytes)
        } else if text.hasPrefix("-----BEGIN") {
            material = try pem(text)
        } else if text.hasPrefix("{") {
            material = try jwk(bytes)
        } else {
            throw .malformedInput(
                "the key file is neither a PEM private key, a JWK, nor 32 raw bytes (an AES key); it has \(bytes.count) bytes"
            )
        }
        if let kty {
            let held = material.kty.replacingOccurrences(of: "-HSM", with: "")
            guard held.lowercased() == kty.lowercased() else {
                throw .malformedInput("the key file holds an \(held) key, not \(kty)")
            }
        }
        return material
    }

    private init(kty: String, curve: String?, modulus: [UInt8]?, bytes: [UInt8]) {
        self.kty = kty
        self.curve = curve
        self.modulus = modulus
        self.bytes = bytes
    }
}
