public import AttestationAPI
internal import Crypto
internal import EnclaveCore
public import Foundation
public import KeyBrokerInterface
internal import _CryptoExtras

/// Verifies an attestation token (JWS compact) for a release, against the pinned keys of the trusted authorities.
///
/// The checks, in order, each refused by its `BrokerRefusal.Code`: the token is three base64url parts with JSON
/// objects (no member named twice) — `MalformedToken`; `alg` is in ``allowedAlgorithms`` (never `none`, never HMAC:
/// an HMAC "verified" with an authority's public key as the secret is the classic confusion) —
/// `AlgorithmNotAllowed`; `iss` names a trusted authority — `UntrustedIssuer`; `kid` names one of that authority's
/// pinned certificates — `UnknownKeyID` (`jku`, `x5u`, `jwk` and `x5c` headers are ignored: a key is never taken
/// from the token, nor fetched); the signature verifies with that key, whose type must match `alg` —
/// `InvalidSignature`; the token is an attestation token, not one of the service's policy tokens (signed with the
/// same key): `typ` absent or `JWT`, a string `x-ms-attestation-type`, and none of `x-enclavekit-token-kind`,
/// `x-ms-policy`, `x-ms-policy-result` — `NotAnAttestationToken`; `exp` is present and not past, `nbf` and `iat`
/// not in the future, both with ``clockSkew`` — `TokenExpired`, `TokenNotYetValid`; a requested nonce equals the
/// token's — `NonceMismatch`.
public struct ReleaseTokenVerifier: Sendable {
    /// The JWS algorithms accepted.
    public static let allowedAlgorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
    ]
    /// The largest token accepted, in characters (256 KiB).
    public static let maximumTokenSize = 256 * 1024

    /// The trusted authorities, by normalized URL.
    let authorities: [String: TrustedAuthority]
    /// The normalized URLs that normalize to themselves: an issuer spelled as one of these is looked up without
    /// parsing it again.
    let canonicalURLs: Set<String>
    /// The clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 60).
    public var clockSkew: TimeInterval = 60

    /// A verifier trusting `authorities`.
    public init(authorities: [TrustedAuthority]) {
        var byURL: [String: TrustedAuthority] = [:]
        for authority in authorities { byURL[authority.normalizedURL] = authority }
        self.authorities = byURL
        canonicalURLs = Set(byURL.keys.filter { ReleasePolicy.normalizeAuthority($0) == $0 })
    }

    /// A token that verified.
    public struct Verified: Sendable {
        /// `iss`, as the token has it.
        public let issuer: String
        /// The payload.
        public let claims: [String: TokenValue]
        /// The header's `alg`.
        public let algorithm: String
        /// `iss` normalized (``ReleasePolicy`` compares authorities so).
        let normalizedIssuer: String
        /// The header's `kid`: the thumbprint of the pinned certificate the signature verified with.
        let keyID: String
    }

    /// A token split into its parts and its header and payload parsed, nothing verified yet.
    public struct Parsed: Sendable {
        /// The header's members.
        public let header: [String: TokenValue]
        /// The payload's members.
        public let claims: [String: TokenValue]
        /// The signature's bytes.
        let signature: [UInt8]
        /// The bytes the signature covers: the first two parts and the dot between them, as the token has them.
        let signedBytes: [UInt8]
    }

    /// The payload of a token without verifying anything (for the audit record of a refused token). Lenient: a
    /// payload this verifier refuses (a member named twice, say) is still read as `JSONDecoder` reads it.
    public static func unverifiedClaims(_ token: String) -> [String: TokenValue]? {
        if let parsed = try? parse(token) { return parsed.claims }
        guard token.utf8.count <= maximumTokenSize else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]) else { return nil }
        guard case .object(let members)? = try? JSONDecoder().decode(TokenValue.self, from: Data(payload)) else {
            return nil
        }
        return members
    }

    /// Splits `token` into its three parts and parses its header and payload (`MalformedToken` when it can't).
    public static func parse(_ token: String) throws(KeyBrokerError) -> Parsed {
        typealias Code = BrokerRefusal.Code
        guard token.utf8.count <= Self.maximumTokenSize else {
            throw KeyBrokerError(Code.malformedToken, "the token is over \(Self.maximumTokenSize) characters")
        }
        let bytes = Array(token.utf8)
        var dots: [Int] = []
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: ".") {
            dots.append(index)
            guard dots.count <= 2 else { break }
        }
        guard dots.count == 2 else { throw KeyBrokerError(Code.malformedToken, "the token is not three JWS parts") }
        let header = try Self.object(bytes[0..<dots[0]], what: "header")
        let claims = try Self.object(bytes[(dots[0] + 1)..<dots[1]], what: "payload")
        guard let signature = Self.base64URL(bytes[(dots[1] + 1)...]) else {
            throw KeyBrokerError(Code.malformedToken, "the token's signature is not base64url")
        }
        return Parsed(header: header, claims: claims, signature: signature, signedBytes: Array(bytes[0..<dots[1]]))
    }

    /// Verifies `token` at `now`; `nonce`, when given, must be the token's.
    public func verify(_ token: String, now: Date, nonce: String? = nil) throws(KeyBrokerError) -> Verified {
        try verify(Self.parse(token), now: now, nonce: nonce)
    }

    /// Verifies a token already parsed (``parse(_:)``) at `now`; `nonce`, when given, must be the token's.
    public func verify(_ parsed: Parsed, now: Date, nonce: String? = nil) throws(KeyBrokerError) -> Verified {
        typealias Code = BrokerRefusal.Code
        let header = parsed.header
        let claims = parsed.claims
        guard case .string(let algorithm)? = header["alg"] else {
            throw KeyBrokerError(Code.malformedToken, "the token's header has no alg")
        }
        guard Self.allowedAlgorithms.contains(algorithm) else {
            throw KeyBrokerError(Code.algorithmNotAllowed, "the token's alg \"\(algorithm.prefix(16))\" is not allowed")
        }
        guard case .string(let issuer)? = claims["iss"] else {
            throw KeyBrokerError(Code.untrustedIssuer, "the token has no iss")
        }
        guard let (authority, normalizedIssuer) = self.authority(issuer) else {
            throw KeyBrokerError(Code.untrustedIssuer, "the token's issuer is not a trusted authority")
        }
        guard case .string(let kid)? = header["kid"], let key = authority.keys[kid] else {
            throw KeyBrokerError(Code.unknownKeyID, "the token's kid names no pinned certificate of its authority")
        }
        guard Self.verify(parsed.signature, over: parsed.signedBytes, algorithm: algorithm, key: key) else {
            throw KeyBrokerError(Code.invalidSignature, "the token's signature does not verify with the pinned key")
        }
        try Self.checkAttestationToken(header: header, claims: claims)
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
        return Verified(
            issuer: issuer,
            claims: claims,
            algorithm: algorithm,
            normalizedIssuer: normalizedIssuer,
            keyID: kid
        )
    }

    /// The claims only a policy token carries (the attestation service's `GET /policies/{type}` and the answers to
    /// policy and certificate changes; MAA's policy tokens carry the last two).
    static let policyTokenClaims = ["x-enclavekit-token-kind", "x-ms-policy", "x-ms-policy-result"]

    /// Refuses (`NotAnAttestationToken`) a token that is not an attestation token, as the client's `TokenVerifier`
    /// does: the service signs its policy tokens with its attestation key, so the signature alone does not tell them
    /// apart. An attestation token as MAA and the service issue it has `typ` `JWT` (or none), names its
    /// `x-ms-attestation-type` and carries no policy claim; a policy token has `typ` `policy+jwt` (MAA's: `JWT`),
    /// `x-enclavekit-token-kind`, `x-ms-policy` or `x-ms-policy-result`, and no attestation type.
    static func checkAttestationToken(
        header: [String: TokenValue],
        claims: [String: TokenValue]
    ) throws(KeyBrokerError) {
        let code = BrokerRefusal.Code.notAttestationToken
        if let type = header["typ"] {
            guard case .string(let text) = type, text.uppercased() == "JWT" else {
                throw KeyBrokerError(code, "the token is not an attestation token: its typ is not JWT")
            }
        }
        guard case .string(let attestationType)? = claims["x-ms-attestation-type"], !attestationType.isEmpty else {
            throw KeyBrokerError(code, "the token is not an attestation token: it names no x-ms-attestation-type")
        }
        if let name = policyTokenClaims.first(where: { claims[$0] != nil }) {
            throw KeyBrokerError(
                code,
                "the token is not an attestation token: it carries the policy token claim \(name)"
            )
        }
    }

    /// Every trusted authority with the thumbprints of its pinned certificates (the broker's evidence binds these).
    public var pins: AuthorityPins {
        var pins: [String: Set<String>] = [:]
        for (url, authority) in authorities { pins[url] = Set(authority.keys.keys) }
        // The limits hold: `TrustedAuthority` and `KeyBroker` check them.
        return (try? AuthorityPins(pins)) ?? .none
    }

    /// The pins of the trusted authorities among `urls` (normalized): what a key whose policy names them is
    /// released under. An authority the broker does not trust gets no pin (nothing of it releases the key).
    public func pins(for urls: some Sequence<String>) -> AuthorityPins {
        var pins: [String: Set<String>] = [:]
        for url in urls {
            if let authority = authorities[url] { pins[url] = Set(authority.keys.keys) }
        }
        return (try? AuthorityPins(pins)) ?? .none
    }

    /// The trusted authority `issuer` names, and `issuer` normalized; an issuer spelled as the authority's
    /// normalized URL (as tokens spell it) is looked up without parsing it again.
    func authority(_ issuer: String) -> (TrustedAuthority, String)? {
        if canonicalURLs.contains(issuer), let authority = authorities[issuer] { return (authority, issuer) }
        guard let normalized = ReleasePolicy.normalizeAuthority(issuer), let authority = authorities[normalized] else {
            return nil
        }
        return (authority, normalized)
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

    /// The deepest nesting of a token's header or payload (the policy prescan's limit).
    static let maximumNesting = 2 * ReleasePolicy.maximumDepth + 3

    static func object(_ part: ArraySlice<UInt8>, what: String) throws(KeyBrokerError) -> [String: TokenValue] {
        guard let bytes = base64URL(part) else {
            throw KeyBrokerError(BrokerRefusal.Code.malformedToken, "the token's \(what) is not base64url")
        }
        let value: TokenValue
        do { value = try TokenJSON.parse(bytes, maximumDepth: maximumNesting) } catch {
            throw KeyBrokerError(BrokerRefusal.Code.malformedToken, "the token's \(what): \(error)")
        }
        guard case .object(let members) = value else {
            throw KeyBrokerError(BrokerRefusal.Code.malformedToken, "the token's \(what) is not a JSON object")
        }
        return members
    }

    /// Base64url as ``Base64URL/decode(_:)`` reads it (the standard alphabet's `+` and `/` too, padding optional,
    /// nothing after it; unused low bits ignored), straight from the token's bytes.
    static func base64URL(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4 + 2)
        var accumulator: UInt32 = 0
        var bits = 0
        var count = 0
        var padding = 0
        for byte in text {
            let sextet: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): sextet = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): sextet = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sextet = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"), UInt8(ascii: "+"): sextet = 62
            case UInt8(ascii: "_"), UInt8(ascii: "/"): sextet = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            count += 1
            accumulator = accumulator << 6 | UInt32(sextet)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard padding <= 2, count % 4 != 1 else { return nil }
        return output
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
