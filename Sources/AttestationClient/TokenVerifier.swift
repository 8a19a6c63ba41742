internal import EnclaveCore
public import Foundation
internal import JWTKit

/// A relying party's check of an attestation token: the signature under a key of the service's JWKS (chosen by
/// `kid`), an algorithm from an allow-list that never includes `none` or HMAC, the time window (`nbf`, `exp`, and
/// `iat` not in the future) with a bounded clock skew, the expected issuer, and optionally the nonce (an echo, not a
/// freshness check) or the challenge the evidence binds (freshness). Only attestation
/// tokens pass: a token with another `typ` (the service's policy tokens are `policy+jwt`) or without
/// `x-ms-attestation-type` is refused.
///
/// The algorithm a key verifies with is fixed when the verifier is made, never by a token: a key's `alg` when the
/// JWKS states one, otherwise each allowed algorithm that fits the key (`RS*`/`PS*` for an RSA key, the `ES*` of an
/// EC key's curve). A token's `alg` must be allowed and one of its key's: the signature is checked with exactly that
/// algorithm. `exp` (required), `nbf` and `iat` must be numbers.
public struct TokenVerifier: Sendable {
    /// Why a token is refused.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// Which check refused the token, for people.
        public var reason: String
        /// The token names a key the JWKS does not have (a rotated key set may have it).
        public var unknownKey = false
        public var description: String { "token refused: \(reason)" }
    }

    /// Asymmetric algorithms only.
    public static let defaultAlgorithms: Set<String> = [
        "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    ]

    /// The header `typ` of the service's policy tokens, which are never attestation tokens.
    public static let policyTokenType = PolicyResultClaims.tokenType

    /// The `iss` a token must carry: the service's issuer, as its OpenID configuration states it.
    public let issuer: String
    /// The JWS algorithms accepted; `none` and HMAC are always removed, whatever was asked for.
    public let allowedAlgorithms: Set<String>
    /// How far the verifier's clock may be from the service's.
    public let clockSkew: TimeInterval
    /// The keys by `kid`, then by the algorithm each verifies with: one collection per pair, holding that key alone
    /// with its `alg` set, so JWTKit never takes the algorithm from a token (it keeps the first one it is given for a
    /// key without `alg`).
    private let keys: [String: [String: JWTKeyCollection]]

    /// The RSA signature algorithms (PKCS #1 v1.5 and PSS).
    static let rsaAlgorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]

    /// The ECDSA algorithm of each curve.
    static let curveAlgorithms: [String: String] = ["P-256": "ES256", "P-384": "ES384", "P-521": "ES512"]

    /// A verifier for tokens of `issuer`, signed by a key of `jwks` (the service's `/certs` document).
    ///
    /// Each ECDSA or RSA key with a `kid` verifies with its `alg` when the JWKS states one (and nothing when that is
    /// not allowed), otherwise with every allowed algorithm that fits it. Other keys are left out.
    ///
    /// A key may be given by its members (`n` and `e`; `crv`, `x` and `y`), by a certificate chain (`x5c`, whose
    /// first certificate holds the key: Microsoft Azure Attestation's `/certs` states only `kid`, `kty` and `x5c`),
    /// or both, which must then agree. The chain is not validated and adds no trust: the JWKS is trusted because of
    /// how it was fetched or given.
    /// - Throws: ``Failure`` when the JWKS does not parse, has a key whose `alg` does not fit its type or curve, a
    ///   key whose `x5c` is not base64 DER certificates, holds another key than its `kty` or differs from the members
    ///   it states, two keys with the same `kid` for the same algorithm, or no key that verifies an allowed algorithm;
    ///   JWTKit's error for a key it cannot load.
    public init(
        jwks json: String,
        issuer: String,
        allowedAlgorithms: Set<String> = TokenVerifier.defaultAlgorithms,
        clockSkew: TimeInterval = 60
    ) async throws {
        let set: JWKS
        let chains: CertificateChains
        do {
            set = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
            chains = try JSONDecoder().decode(CertificateChains.self, from: Data(json.utf8))
        } catch {
            throw Failure(reason: "the JWKS does not parse: \(error)")
        }
        guard chains.keys.count == set.keys.count else { throw Failure(reason: "the JWKS does not parse") }
        self.allowedAlgorithms = allowedAlgorithms.subtracting(["none", "HS256", "HS384", "HS512"])
        self.issuer = issuer
        self.clockSkew = min(max(0, clockSkew), 300)
        var keys: [String: [String: JWTKeyCollection]] = [:]
        for (index, stated) in set.keys.enumerated() {
            guard let kid = stated.keyIdentifier?.string, stated.keyType == .ecdsa || stated.keyType == .rsa else {
                continue
            }
            // A key with a certificate chain: its public key is the first certificate's (MAA states only `x5c`).
            let key = try chains.keys[index].x5c.map { try Self.key(stated, certifiedBy: $0, kid: kid) } ?? stated
            var algorithms = keys[kid] ?? [:]
            for algorithm in try Self.algorithms(of: key, kid: kid).intersection(self.allowedAlgorithms).sorted() {
                guard algorithms[algorithm] == nil else {
                    throw Failure(reason: "the JWKS has two keys with kid \(kid) for \(algorithm)")
                }
                var fixed = key
                fixed.algorithm = JWK.Algorithm(rawValue: algorithm)
                let collection = JWTKeyCollection()
                try await collection.add(jwk: fixed)
                // The signer exists now, fixed to `algorithm`: JWTKit makes one later only for a key without `alg`.
                guard try await collection.getKey(for: JWKIdentifier(string: kid)).name == algorithm else {
                    throw Failure(reason: "the key \(kid) does not load for \(algorithm)")
                }
                algorithms[algorithm] = collection
            }
            keys[kid] = algorithms
        }
        guard keys.values.contains(where: { !$0.isEmpty }) else {
            throw Failure(reason: "the JWKS has no usable key with a kid (for the algorithms allowed)")
        }
        self.keys = keys
    }

    /// The algorithms `key` may verify with: its `alg`, which must fit its type (and an EC key's curve), or, without
    /// one, every algorithm of its type (of its curve).
    static func algorithms(of key: JWK, kid: String) throws -> Set<String> {
        let declared = key.algorithm?.rawValue
        let fitting: Set<String>
        if key.keyType == .rsa {
            fitting = rsaAlgorithms
        } else if let curve = key.curve?.rawValue {
            guard let algorithm = curveAlgorithms[curve] else {
                throw Failure(reason: "the key \(kid) is on curve \(curve), not P-256, P-384 or P-521")
            }
            fitting = [algorithm]
        } else if let declared, curveAlgorithms.values.contains(declared) {
            fitting = [declared]
        } else {
            throw Failure(reason: "the EC key \(kid) names neither its curve nor its algorithm")
        }
        guard let declared else { return fitting }
        guard fitting.contains(declared) else {
            throw Failure(reason: "the key \(kid)'s alg \(declared) does not fit the key")
        }
        return [declared]
    }

    /// Verify `token` at `time` and return its claims.
    ///
    /// - Important: `nonce` is **not** a freshness check. The service copies the request's `nonce` into the token
    ///   without binding it to the evidence: whoever holds evidence (fresh or replayed) can ask for a token with any
    ///   nonce. For freshness, get a challenge from the service (`GET /challenge`), have the TEE put it in the runtime
    ///   data its evidence binds (`{"challenge": …}`), and pass it here as `challenge`: the service sets
    ///   `x-enclavekit-challenge` only for a challenge it issued, that had not expired and that the evidence's report
    ///   data binds, and accepts each challenge once.
    /// - Parameters:
    ///   - token: the compact JWS, as the service returned it.
    ///   - nonce: when given, the token's `nonce` claim must equal it (it correlates a response with its request;
    ///     it proves nothing about when the evidence was produced).
    ///   - challenge: when given, the token's `x-enclavekit-challenge` claim must equal it: the evidence was bound to
    ///     this challenge, so it was produced after the challenge was issued.
    ///   - time: the time the token must be valid at (`nbf` … `exp`, with the clock skew); now by default.
    public func verify(
        _ token: String,
        nonce: String? = nil,
        challenge: String? = nil,
        at time: Date = Date()
    ) async throws -> AttestationTokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 256 << 10 else { throw Failure(reason: "not a compact JWS") }
        guard let headerBytes = Base64URL.decode(String(parts[0])),
            let header = try? JSONDecoder().decode([String: TokenValue].self, from: Data(headerBytes))
        else {
            throw Failure(reason: "the header does not parse")
        }
        guard let algorithm = header["alg"]?.stringValue, allowedAlgorithms.contains(algorithm) else {
            throw Failure(reason: "algorithm \(header["alg"]?.description ?? "(none)") is not allowed")
        }
        // Only attestation tokens: `typ` absent or JWT (the service gives its policy tokens their own).
        if let type = header["typ"] {
            guard let text = type.stringValue, text.uppercased() == "JWT" else {
                throw Failure(reason: "not an attestation token (typ \(type.description))")
            }
        }
        guard let kid = header["kid"]?.stringValue, let algorithms = keys[kid] else {
            throw Failure(
                reason: "no key with the token's kid \(header["kid"]?.description ?? "(none)")",
                unknownKey: true
            )
        }
        // The signature is checked with the header's algorithm, which must be one the key verifies with.
        guard let key = algorithms[algorithm] else {
            let known = algorithms.isEmpty ? "none" : algorithms.keys.sorted().joined(separator: ", ")
            throw Failure(reason: "the key \(kid) does not verify \(algorithm) (allowed for it: \(known))")
        }
        let claims: AttestationTokenClaims
        do {
            claims = try await key.verify(token, as: AttestationTokenClaims.self)
        } catch {
            throw Failure(reason: "the signature does not verify")
        }
        let now = time.timeIntervalSince1970
        guard let exp = try Self.seconds(claims, "exp") else { throw Failure(reason: "the token has no exp") }
        guard now <= exp + clockSkew else { throw Failure(reason: "the token has expired") }
        if let nbf = try Self.seconds(claims, "nbf"), now + clockSkew < nbf {
            throw Failure(reason: "the token is not valid yet")
        }
        if let iat = try Self.seconds(claims, "iat"), now + clockSkew < iat {
            throw Failure(reason: "the token was issued in the future")
        }
        // The claim sets differ too: an attestation token names its attestation type, a policy token does not.
        guard claims["x-ms-attestation-type"] != nil, claims["x-enclavekit-token-kind"] == nil,
            claims["x-ms-policy"] == nil, claims["x-ms-policy-result"] == nil
        else {
            throw Failure(reason: "not an attestation token (it has no x-ms-attestation-type or is a policy token)")
        }
        guard claims["iss"]?.stringValue == issuer else {
            throw Failure(reason: "the issuer is \(claims["iss"]?.description ?? "(none)"), expected \(issuer)")
        }
        if let nonce {
            guard claims["nonce"]?.stringValue == nonce else { throw Failure(reason: "the nonce does not match") }
        }
        if let challenge {
            guard claims["x-enclavekit-challenge"]?.stringValue == challenge else {
                throw Failure(reason: "the evidence is not bound to the challenge (x-enclavekit-challenge)")
            }
        }
        return claims
    }

    /// The time claim `name` as seconds, `nil` when the token has none.
    /// - Throws: ``Failure`` when the claim is there but not a finite number (a string, `null`, …): ignoring it would
    ///   accept a token outside the window its issuer meant.
    static func seconds(_ claims: AttestationTokenClaims, _ name: String) throws(Failure) -> Double? {
        guard let value = claims[name] else { return nil }
        guard let seconds = value.number, seconds.isFinite else {
            throw Failure(reason: "the token's \(name) is not a number (\(value.jsonText.prefix(32)))")
        }
        return seconds
    }
}

extension TokenValue {
    /// A number as seconds.
    var number: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }
}
