public import AttestationAPI
internal import Crypto
internal import EnclaveCore
public import Foundation
internal import KeyBrokerInterface
internal import _CryptoExtras

/// Verifies an attestation token (JWS compact) for a release, against the pinned keys of the trusted authorities.
///
/// The checks, in order, each refused by its `BrokerRefusal.Code`: the token is three base64url parts with JSON
/// objects (no member named twice) — `MalformedToken`; `alg` is in ``allowedAlgorithms`` (never `none`, never HMAC:
/// an HMAC "verified" with an authority's public key as the secret is the classic confusion) —
/// `AlgorithmNotAllowed`; `iss` names a trusted authority — `UntrustedIssuer`; `kid` names one of that authority's
/// pinned certificates — `UnknownKeyID` (`jku`, `x5u`, `jwk` and `x5c` headers are ignored: a key is never taken
/// from the token, nor fetched); the signature verifies with that key, whose type must match `alg` —
/// `InvalidSignature`; `exp` is present and not past, `nbf` and `iat` not in the future, both with ``clockSkew`` —
/// `TokenExpired`, `TokenNotYetValid`; a requested nonce equals the token's — `NonceMismatch`.
public struct ReleaseTokenVerifier: Sendable {
    /// The JWS algorithms accepted.
    public static let allowedAlgorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
    ]
    /// The largest token accepted, in characters (256 KiB).
    public static let maximumTokenSize = 256 * 1024

    /// The trusted authorities, by normalized URL.
    let authorities: [String: TrustedAuthority]
    /// The clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 60).
    public var clockSkew: TimeInterval = 60

    /// A verifier trusting `authorities`.
    public init(authorities: [TrustedAuthority]) {
        var byURL: [String: TrustedAuthority] = [:]
        for authority in authorities { byURL[authority.normalizedURL] = authority }
        self.authorities = byURL
    }

    /// A token that verified.
    public struct Verified: Sendable {
        /// `iss`, as the token has it.
        public let issuer: String
        /// The payload.
        public let claims: [String: TokenValue]
        /// The header's `alg`.
        public let algorithm: String
    }

    /// The payload of a token without verifying anything (for the audit record of a refused token).
    public static func unverifiedClaims(_ token: String) -> [String: TokenValue]? {
        guard token.utf8.count <= maximumTokenSize else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]) else { return nil }
        guard case .object(let members)? = try? JSONDecoder().decode(TokenValue.self, from: Data(payload)) else {
            return nil
        }
        return members
    }

    /// Verifies `token` at `now`; `nonce`, when given, must be the token's.
    public func verify(_ token: String, now: Date, nonce: String? = nil) throws(KeyBrokerError) -> Verified {
        typealias Code = BrokerRefusal.Code
        guard token.utf8.count <= Self.maximumTokenSize else {
            throw KeyBrokerError(Code.malformedToken, "the token is over \(Self.maximumTokenSize) characters")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw KeyBrokerError(Code.malformedToken, "the token is not three JWS parts") }
        let header = try Self.object(parts[0], what: "header")
        let claims = try Self.object(parts[1], what: "payload")
        guard let signature = Base64URL.decode(parts[2]) else {
            throw KeyBrokerError(Code.malformedToken, "the token's signature is not base64url")
        }
        guard case .string(let algorithm)? = header["alg"] else {
            throw KeyBrokerError(Code.malformedToken, "the token's header has no alg")
        }
        guard Self.allowedAlgorithms.contains(algorithm) else {
            throw KeyBrokerError(Code.algorithmNotAllowed, "the token's alg \"\(algorithm.prefix(16))\" is not allowed")
        }
        guard case .string(let issuer)? = claims["iss"] else {
            throw KeyBrokerError(Code.untrustedIssuer, "the token has no iss")
        }
        guard let normalized = ReleasePolicy.normalizeAuthority(issuer), let authority = authorities[normalized] else {
            throw KeyBrokerError(Code.untrustedIssuer, "the token's issuer is not a trusted authority")
        }
        guard case .string(let kid)? = header["kid"], let key = authority.keys[kid] else {
            throw KeyBrokerError(Code.unknownKeyID, "the token's kid names no pinned certificate of its authority")
        }
        let signedBytes = Array((parts[0] + "." + parts[1]).utf8)
        guard Self.verify(signature, over: signedBytes, algorithm: algorithm, key: key) else {
            throw KeyBrokerError(Code.invalidSignature, "the token's signature does not verify with the pinned key")
        }
        let time = now.timeIntervalSince1970
        guard let expiry = Self.number(claims["exp"]) else {
            throw KeyBrokerError(Code.tokenExpired, "the token has no numeric exp")
        }
        guard time <= expiry + clockSkew else { throw KeyBrokerError(Code.tokenExpired, "the token has expired") }
        if let value = claims["nbf"] {
            guard let notBefore = Self.number(value), time + clockSkew >= notBefore else {
                throw KeyBrokerError(Code.tokenNotYetValid, "the token's nbf is in the future")
            }
        }
        if let value = claims["iat"] {
            guard let issued = Self.number(value), time + clockSkew >= issued else {
                throw KeyBrokerError(Code.tokenNotYetValid, "the token's iat is in the future")
            }
        }
        if let nonce {
            guard Self.nonces(in: claims).contains(nonce) else {
                throw KeyBrokerError(Code.nonceMismatch, "the token does not carry the request's nonce")
            }
        }
        return Verified(issuer: issuer, claims: claims, algorithm: algorithm)
    }

    /// The nonces a token carries: `nonce`, `x-ms-runtime.nonce`, `x-ms-runtime.client-payload.nonce`.
    static func nonces(in claims: [String: TokenValue]) -> [String] {
        var found: [String] = []
        if case .string(let value)? = claims["nonce"] { found.append(value) }
        if case .object(let runtime)? = claims["x-ms-runtime"] {
            if case .string(let value)? = runtime["nonce"] { found.append(value) }
            if case .object(let payload)? = runtime["client-payload"], case .string(let value)? = payload["nonce"] {
                found.append(value)
            }
        }
        return found
    }

    static func number(_ value: TokenValue?) -> Double? {
        switch value {
        case .integer(let value)?: Double(value)
        case .double(let value)? where value.isFinite: value
        default: nil
        }
    }

    static func object(_ part: Substring, what: String) throws(KeyBrokerError) -> [String: TokenValue] {
        guard let bytes = Base64URL.decode(part) else {
            throw KeyBrokerError(BrokerRefusal.Code.malformedToken, "the token's \(what) is not base64url")
        }
        do { try ReleasePolicy.prescan(Data(bytes)) } catch {
            throw KeyBrokerError(BrokerRefusal.Code.malformedToken, "the token's \(what): \(error.reason)")
        }
        guard case .object(let members)? = try? JSONDecoder().decode(TokenValue.self, from: Data(bytes)) else {
            throw KeyBrokerError(BrokerRefusal.Code.malformedToken, "the token's \(what) is not a JSON object")
        }
        return members
    }

    static func verify(
        _ signature: [UInt8],
        over bytes: [UInt8],
        algorithm: String,
        key: TrustedAuthority.PinnedKey
    ) -> Bool {
        switch (algorithm, key) {
        case ("ES256", .p256(let key)):
            guard let value = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(value, for: bytes)
        case ("ES384", .p384(let key)):
            guard let value = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(value, for: bytes)
        case (let name, .rsa(let key)) where name.hasPrefix("RS") || name.hasPrefix("PS"):
            let value = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let padding: _RSA.Signing.Padding = name.hasPrefix("PS") ? .PSS : .insecurePKCS1v1_5
            switch name.dropFirst(2) {
            case "256": return key.isValidSignature(value, for: SHA256.hash(data: bytes), padding: padding)
            case "384": return key.isValidSignature(value, for: SHA384.hash(data: bytes), padding: padding)
            case "512": return key.isValidSignature(value, for: SHA512.hash(data: bytes), padding: padding)
            default: return false
            }
        default:
            return false
        }
    }
}
