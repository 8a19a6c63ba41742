internal import Crypto
internal import EnclaveCore
public import KeyBrokerInterface
internal import SwiftASN1
internal import X509
internal import _CryptoExtras

/// An attestation authority the broker trusts, with its pinned token signing keys (from certificates the
/// administrator configured), indexed by the `kid` the attestation service gives them: base64url SHA-256 of the
/// certificate's DER. Also indexed by `x5t#S256`, which is the same value.
public struct TrustedAuthority: Sendable {
    /// A pinned signing key.
    enum PinnedKey: @unchecked Sendable {  // the swift-crypto public keys are immutable values
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
    }

    /// The authority's URL as configured.
    public let url: String
    /// The URL normalized as release policies and issuers are compared.
    public let normalizedURL: String
    let keys: [String: PinnedKey]

    /// An authority from its URL and the DER of its signing certificates.
    ///
    /// - Throws: ``KeyBrokerError`` `InvalidRequest` when the URL is not an http(s) URL, a certificate does not
    ///   parse, or its key is neither RSA (at least 2048 bits) nor ECDSA P-256/P-384.
    public init(_ authority: BrokerAuthority) throws(KeyBrokerError) {
        guard let normalized = ReleasePolicy.normalizeAuthority(authority.url) else {
            throw KeyBrokerError(KeyBrokerError.invalidRequest, "the authority \(authority.url) is not an http(s) URL")
        }
        guard normalized.utf8.count <= AuthorityPins.maximumURLLength,
            authority.certificates.count <= AuthorityPins.maximumThumbprints
        else {
            throw KeyBrokerError(
                KeyBrokerError.invalidRequest,
                "the authority \(authority.url.prefix(64)) has a URL over \(AuthorityPins.maximumURLLength) bytes or "
                    + "more than \(AuthorityPins.maximumThumbprints) certificates"
            )
        }
        url = authority.url
        normalizedURL = normalized
        var keys: [String: PinnedKey] = [:]
        for der in authority.certificates {
            let certificate: Certificate
            do { certificate = try Certificate(derEncoded: der) } catch {
                throw KeyBrokerError(KeyBrokerError.invalidRequest, "a certificate of \(authority.url) does not parse")
            }
            let kid = Base64URL.encode(Array(SHA256.hash(data: der)))
            if let key = _RSA.Signing.PublicKey(certificate.publicKey), key.keySizeInBits >= 2048 {
                keys[kid] = .rsa(key)
            } else if let key = P256.Signing.PublicKey(certificate.publicKey) {
                keys[kid] = .p256(key)
            } else if let key = P384.Signing.PublicKey(certificate.publicKey) {
                keys[kid] = .p384(key)
            } else {
                throw KeyBrokerError(
                    KeyBrokerError.invalidRequest,
                    "a certificate of \(authority.url) has a key that is not RSA ≥ 2048, P-256 or P-384"
                )
            }
        }
        guard !keys.isEmpty else {
            throw KeyBrokerError(KeyBrokerError.invalidRequest, "the authority \(authority.url) has no certificate")
        }
        self.keys = keys
    }

    /// The thumbprints (`kid`: base64url SHA-256 of the DER) of the pinned certificates, ordered.
    public var thumbprints: [String] { keys.keys.sorted() }
}
