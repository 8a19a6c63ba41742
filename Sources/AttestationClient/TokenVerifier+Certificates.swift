internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import JWTKit
internal import X509
internal import _CryptoExtras

/// A JWKS key's certificate chain (`x5c`, RFC 7517 §4.7): Microsoft Azure Attestation's `/certs` publishes its RSA
/// keys as `kid`, `kty` and `x5c` only, no `n`/`e`, so the public key is read from the chain's first certificate.
///
/// The chain is not validated and adds no trust: the key set is trusted because of how it was fetched (the service's
/// TLS identity) or given, exactly as a key set of bare `n`/`e`. The certificate only says which key it is.
extension TokenVerifier {
    /// The most certificates one key's `x5c` may hold.
    static let maximumCertificateChainLength = 16

    /// Each key's `x5c`, in the order of the set's `keys` (JWTKit's `JWK` does not read it).
    struct CertificateChains: Decodable {
        struct Key: Decodable {
            var x5c: [String]?
        }
        var keys: [Key]
    }

    /// `key` with the public key of `chain`'s first certificate: members the key lacks (`n` and `e`; `crv`, `x` and
    /// `y`) are taken from it, and members it states must equal the certificate's.
    /// - Throws: ``Failure`` naming `kid` when the chain is empty or too long, an entry is not base64 or not a DER
    ///   X.509 certificate, the certificate holds another kind of key than `kty` says (or an EC key off P-256, P-384
    ///   and P-521), the key states only some of its members, or what it states differs from the certificate.
    static func key(_ key: JWK, certifiedBy chain: [String], kid: String) throws(Failure) -> JWK {
        guard !chain.isEmpty else { throw Failure(reason: "the key \(kid)'s x5c is empty") }
        guard chain.count <= maximumCertificateChainLength else {
            throw Failure(
                reason: "the key \(kid)'s x5c has \(chain.count) certificates, at most \(maximumCertificateChainLength)"
            )
        }
        var certificates: [Certificate] = []
        for (index, entry) in chain.enumerated() {
            // Standard base64 with padding (RFC 7517 §4.7), not base64url.
            guard let der = Data(base64Encoded: entry), !der.isEmpty else {
                throw Failure(reason: "the key \(kid)'s x5c[\(index)] is not base64")
            }
            do {
                certificates.append(try Certificate(derEncoded: Array(der)))
            } catch {
                throw Failure(reason: "the key \(kid)'s x5c[\(index)] is not a DER X.509 certificate (\(error))")
            }
        }
        let certified = certificates[0].publicKey
        var key = key
        if key.keyType == .rsa {
            guard let rsa = _RSA.Signing.PublicKey(certified), let primitives = try? rsa.getKeyPrimitives() else {
                throw Failure(reason: "the key \(kid) is RSA but its x5c certificate holds another kind of key")
            }
            let modulus = Array(primitives.modulus.drop { $0 == 0 })
            let exponent = Array(primitives.publicExponent.drop { $0 == 0 })
            (key.modulus, key.exponent) = try merged(
                (key.modulus, key.exponent),
                with: (modulus, exponent),
                names: ("n", "e"),
                kid: kid
            )
        } else {
            let curve: String
            let point: Data
            if let p256 = P256.Signing.PublicKey(certified) {
                (curve, point) = ("P-256", p256.rawRepresentation)
            } else if let p384 = P384.Signing.PublicKey(certified) {
                (curve, point) = ("P-384", p384.rawRepresentation)
            } else if let p521 = P521.Signing.PublicKey(certified) {
                (curve, point) = ("P-521", p521.rawRepresentation)
            } else {
                throw Failure(reason: "the key \(kid) is EC but its x5c certificate holds no P-256, P-384 or P-521 key")
            }
            if let stated = key.curve?.rawValue, stated != curve {
                throw Failure(reason: "the key \(kid)'s crv \(stated) differs from its x5c certificate's \(curve)")
            }
            key.curve = JWK.Curve(rawValue: curve)
            // Coordinates keep their full length (RFC 7518 §6.2.1.2), as JWTKit reads them.
            let half = point.count / 2
            (key.x, key.y) = try merged(
                (key.x, key.y),
                with: (Array(point.prefix(half)), Array(point.suffix(half))),
                names: ("x", "y"),
                kid: kid
            )
        }
        return key
    }

    /// A key's two members (`n`/`e`, `x`/`y`) as base64url: the certificate's (`certified`, encoded as given) when
    /// the key states neither; the key's own when both equal the certificate's as unsigned big-endian integers.
    private static func merged(
        _ stated: (String?, String?),
        with certified: ([UInt8], [UInt8]),
        names: (String, String),
        kid: String
    ) throws(Failure) -> (String?, String?) {
        switch stated {
        case (nil, nil):
            return (Base64URL.encode(certified.0), Base64URL.encode(certified.1))
        case (let first?, let second?):
            for (text, value, name) in [(first, certified.0, names.0), (second, certified.1, names.1)] {
                guard let bytes = Base64URL.decode(text),
                    bytes.drop(while: { $0 == 0 }).elementsEqual(value.drop { $0 == 0 })
                else {
                    throw Failure(reason: "the key \(kid)'s \(name) differs from its x5c certificate's key")
                }
            }
            return stated
        default:
            throw Failure(reason: "the key \(kid) states only one of \(names.0) and \(names.1)")
        }
    }
}
