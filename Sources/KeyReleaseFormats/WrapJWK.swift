public import Crypto
internal import EnclaveCore
public import _CryptoExtras

/// The members of a JSON Web Key (RFC 7517) that wrapping keys use: the keys of a token's `x-ms-runtime.keys`, an
/// enclave's ephemeral key, the broker's import key.
public struct WrapJWK: Codable, Hashable, Sendable {
    /// `RSA` or `EC`.
    public var kty: String
    /// The key ID.
    public var kid: String?
    /// `enc` for an encryption key.
    public var use: String?
    /// Key Vault `key_ops` (`encrypt`, `wrapKey`, …).
    public var key_ops: [String]?
    /// An EC key's curve.
    public var crv: String?
    /// An EC key's x coordinate, base64url.
    public var x: String?
    /// An EC key's y coordinate, base64url.
    public var y: String?
    /// An RSA key's modulus, base64url.
    public var n: String?
    /// An RSA key's public exponent, base64url.
    public var e: String?

    /// A key with the members given.
    public init(
        kty: String,
        kid: String? = nil,
        use: String? = nil,
        key_ops: [String]? = nil,
        crv: String? = nil,
        x: String? = nil,
        y: String? = nil,
        n: String? = nil,
        e: String? = nil
    ) {
        self.kty = kty
        self.kid = kid
        self.use = use
        self.key_ops = key_ops
        self.crv = crv
        self.x = x
        self.y = y
        self.n = n
        self.e = e
    }

    /// The public JWK of an RSA key.
    public init(rsa key: _RSA.Encryption.PublicKey, kid: String? = nil) throws {
        let primitives = try key.getKeyPrimitives()
        self.init(
            kty: "RSA",
            kid: kid,
            use: "enc",
            key_ops: ["encrypt", "wrapKey"],
            n: Base64URL.encode(Array(primitives.modulus.drop { $0 == 0 })),
            e: Base64URL.encode(Array(primitives.publicExponent.drop { $0 == 0 }))
        )
    }

    /// The public JWK of a P-256 key-agreement key.
    public init(p256 key: P256.KeyAgreement.PublicKey, kid: String? = nil) {
        let raw = Array(key.rawRepresentation)
        self.init(
            kty: "EC",
            kid: kid,
            use: "enc",
            key_ops: ["encrypt", "wrapKey"],
            crv: "P-256",
            x: Base64URL.encode(raw.prefix(32)),
            y: Base64URL.encode(raw.suffix(32))
        )
    }

    /// The public JWK of a P-384 key-agreement key.
    public init(p384 key: P384.KeyAgreement.PublicKey, kid: String? = nil) {
        let raw = Array(key.rawRepresentation)
        self.init(
            kty: "EC",
            kid: kid,
            use: "enc",
            key_ops: ["encrypt", "wrapKey"],
            crv: "P-384",
            x: Base64URL.encode(raw.prefix(48)),
            y: Base64URL.encode(raw.suffix(48))
        )
    }

    /// Whether the key says it may encrypt: `use` is `enc`, or `key_ops` has `encrypt` or `wrapKey`, or it says
    /// neither (no restriction).
    public var allowsEncryption: Bool {
        if let use, use != "enc" { return false }
        if let key_ops { return key_ops.contains("encrypt") || key_ops.contains("wrapKey") }
        return true
    }

    /// The key as a wrap target, checked: RSA of at least 2048 bits (``KeyReleaseFormatError/Code/weakKey`` below),
    /// EC on P-256 or P-384 with a point on the curve (``KeyReleaseFormatError/Code/unsupported`` for another curve).
    public func wrapTarget() throws(KeyReleaseFormatError) -> WrapTarget {
        switch kty {
        case "RSA":
            guard let n, let e, let modulus = Base64URL.decode(n), let exponent = Base64URL.decode(e),
                !modulus.isEmpty, !exponent.isEmpty, exponent.count <= 8
            else { throw .malformed("the RSA key's n or e is missing or not base64url") }
            let significant = modulus.drop { $0 == 0 }
            let bits = significant.isEmpty ? 0 : significant.count * 8 - significant.first!.leadingZeroBitCount
            guard bits >= 2048 else {
                throw KeyReleaseFormatError(.weakKey, "the RSA key has \(bits) bits, under 2048")
            }
            guard bits <= 8192 else { throw .unsupported("the RSA key has \(bits) bits, over 8192") }
            do {
                return .rsa(try _RSA.Encryption.PublicKey(n: Array(significant), e: exponent))
            } catch { throw .malformed("the RSA key's n and e are not a usable key") }
        case "EC":
            guard let crv else { throw .malformed("the EC key has no crv") }
            let size: Int
            switch crv {
            case "P-256": size = 32
            case "P-384": size = 48
            default: throw .unsupported("the EC key is on \(crv), not P-256 or P-384")
            }
            guard let x, let y, let xBytes = Base64URL.decode(x), let yBytes = Base64URL.decode(y),
                xBytes.count == size, yBytes.count == size
            else { throw .malformed("the EC key's x or y is missing or not \(size) bytes") }
            do {
                if size == 32 {
                    return .p256(try P256.KeyAgreement.PublicKey(rawRepresentation: xBytes + yBytes))
                }
                return .p384(try P384.KeyAgreement.PublicKey(rawRepresentation: xBytes + yBytes))
            } catch { throw .malformed("the EC key's point is not on \(crv)") }
        default:
            throw .unsupported("the key type \(kty) is neither RSA nor EC")
        }
    }
}

/// A checked public key a key can be wrapped to.
public enum WrapTarget {
    /// RSA, at least 2048 bits: `RSA_AES_KEY_WRAP_256`.
    case rsa(_RSA.Encryption.PublicKey)
    /// EC P-256: JWE `ECDH-ES+A256KW`.
    case p256(P256.KeyAgreement.PublicKey)
    /// EC P-384: JWE `ECDH-ES+A256KW`.
    case p384(P384.KeyAgreement.PublicKey)
}
