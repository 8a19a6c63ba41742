import AttestationClient
import AttestationService
import EnclaveCore
import Foundation
import JWTKit
import Testing

/// The algorithm a JWKS key verifies with is the verifier's decision, never a token's, and it is in the allow-list;
/// time claims are numbers (review 6, finding I). Tokens are made here with jwt-kit's signers over headers written
/// by hand, so a header can claim one algorithm while the signature is another's.
@Suite("TokenVerifier: the key's algorithm, allowed; numeric time claims (review 6, I)")
struct TokenVerifierAlgorithmTests {
    static let issuer = "http://attestation.test"

    /// An RSA key (the service's kind of key): its public JWK without `alg`, and signers under kids `RS256` and
    /// `PS256`.
    struct RSAKey {
        var jwk: JSONWebKey
        var signers: JWTKeyCollection
    }

    static func rsaKey(kid: String) async throws -> RSAKey {
        let stored = try TokenSigner.generate(issuer: issuer, type: .rsa)
        var jwk = try await TokenSigner(stored).jwk
        jwk.alg = nil
        jwk.x5c = nil
        jwk.kid = kid
        let key = try Insecure.RSA.PrivateKey(pem: stored.privateKeyPEM)
        let signers = JWTKeyCollection()
        await signers.add(rsa: key, digestAlgorithm: .sha256, kid: "RS256")
        await signers.add(pss: key, digestAlgorithm: .sha256, kid: "PS256")
        return RSAKey(jwk: jwk, signers: signers)
    }

    static func jwks(_ keys: [JSONWebKey]) throws -> String {
        String(decoding: try JSONEncoder().encode(JSONWebKeySet(keys: keys)), as: UTF8.self)
    }

    /// Valid attestation claims for an hour, with `changes` applied.
    static func claims(_ changes: [String: TokenValue] = [:]) -> [String: TokenValue] {
        let now = Int(Date().timeIntervalSince1970)
        let claims: [String: TokenValue] = [
            "iss": .string(issuer), "iat": .integer(now), "nbf": .integer(now), "exp": .integer(now + 3600),
            "x-ms-attestation-type": .string("sgx"),
        ]
        return claims.merging(changes) { $1 }
    }

    /// A compact JWS whose header says `alg` and `kid`, signed by `signer` of `signers` (whatever `alg` says).
    static func token(
        alg: String,
        kid: String,
        signer: String,
        in signers: JWTKeyCollection,
        claims: [String: TokenValue] = claims()
    ) async throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let header: [String: TokenValue] = ["alg": .string(alg), "kid": .string(kid), "typ": .string("JWT")]
        let input =
            Base64URL.encode(Array(try encoder.encode(header))) + "."
            + Base64URL.encode(Array(try encoder.encode(claims)))
        let signature = try await signers.getKey(for: JWKIdentifier(string: signer)).sign(Array(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }

    static func refusal(
        _ verifier: TokenVerifier,
        _ token: String,
        mentioning reason: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let failure = await #expect(throws: TokenVerifier.Failure.self, sourceLocation: sourceLocation) {
            try await verifier.verify(token)
        }
        #expect(
            failure?.reason.contains(reason) == true,
            "\(String(describing: failure))",
            sourceLocation: sourceLocation
        )
    }

    /// A key without `alg`: one junk PS256 token naming it fixed JWTKit's algorithm for the key to PS256 for the
    /// verifier's lifetime, and every valid RS256 token failed after it (failed before: the RS256 token after the
    /// junk one was refused). Now each allowed RSA algorithm verifies under the algorithm its header names.
    @Test func aKeyWithoutAlgIsNotPinnedByAToken() async throws {
        let key = try await Self.rsaKey(kid: "k")
        let verifier = try await TokenVerifier(jwks: try Self.jwks([key.jwk]), issuer: Self.issuer)
        var junk = try await Self.token(alg: "PS256", kid: "k", signer: "PS256", in: key.signers)
        junk = String(junk.dropLast(8)) + "AAAAAAAA"
        await Self.refusal(verifier, junk, mentioning: "the signature does not verify")
        let rs256 = try await Self.token(alg: "RS256", kid: "k", signer: "RS256", in: key.signers)
        #expect(try await verifier.verify(rs256)["iss"] == .string(Self.issuer))
        let ps256 = try await Self.token(alg: "PS256", kid: "k", signer: "PS256", in: key.signers)
        #expect(try await verifier.verify(ps256)["iss"] == .string(Self.issuer))
        #expect(try await verifier.verify(rs256)["iss"] == .string(Self.issuer))
        // A header's algorithm is the one checked: an RS256 signature under a PS256 header does not verify.
        let mislabelled = try await Self.token(alg: "PS256", kid: "k", signer: "RS256", in: key.signers)
        await Self.refusal(verifier, mislabelled, mentioning: "the signature does not verify")
    }

    /// A verifier that allows PS256 only accepted an RS256 signature under a header claiming PS256 with a key whose
    /// `alg` is RS256: the allow-list was checked against the header, JWTKit verified with the key's algorithm
    /// (failed before: the token was accepted).
    @Test func theAlgorithmVerifiedWithIsAllowed() async throws {
        var fixed = try await Self.rsaKey(kid: "rs256-key")
        fixed.jwk.alg = "RS256"
        let open = try await Self.rsaKey(kid: "open-key")
        let jwks = try Self.jwks([fixed.jwk, open.jwk])
        let psOnly = try await TokenVerifier(jwks: jwks, issuer: Self.issuer, allowedAlgorithms: ["PS256"])
        let forged = try await Self.token(alg: "PS256", kid: "rs256-key", signer: "RS256", in: fixed.signers)
        await Self.refusal(psOnly, forged, mentioning: "does not verify PS256")
        let honest = try await Self.token(alg: "RS256", kid: "rs256-key", signer: "RS256", in: fixed.signers)
        await Self.refusal(psOnly, honest, mentioning: "algorithm RS256 is not allowed")
        // The key without alg verifies PS256 only here, and only a PS256 signature.
        let ps256 = try await Self.token(alg: "PS256", kid: "open-key", signer: "PS256", in: open.signers)
        #expect(try await psOnly.verify(ps256)["iss"] == .string(Self.issuer))
        let mislabelled = try await Self.token(alg: "PS256", kid: "open-key", signer: "RS256", in: open.signers)
        await Self.refusal(psOnly, mislabelled, mentioning: "the signature does not verify")
        // Where RS256 is allowed too, the key with alg RS256 verifies RS256 and nothing else.
        let both = try await TokenVerifier(jwks: jwks, issuer: Self.issuer, allowedAlgorithms: ["RS256", "PS256"])
        #expect(try await both.verify(honest)["iss"] == .string(Self.issuer))
        await Self.refusal(both, forged, mentioning: "does not verify PS256")
        let pss = try await Self.token(alg: "PS256", kid: "rs256-key", signer: "PS256", in: fixed.signers)
        await Self.refusal(both, pss, mentioning: "does not verify PS256")
        // A key set with nothing the allow-list allows is refused when the verifier is made.
        let refused = await #expect(throws: TokenVerifier.Failure.self) {
            try await TokenVerifier(jwks: try Self.jwks([fixed.jwk]), issuer: Self.issuer, allowedAlgorithms: ["PS256"])
        }
        #expect(refused?.reason.contains("no usable key") == true, "\(String(describing: refused))")
    }

    /// A key whose `alg` does not fit it gave JWTKit no signer, so the first token naming the key chose one (failed
    /// before: both key sets were taken). The EC key without `alg` verifies its curve's algorithm only.
    @Test func aKeyWhoseAlgDoesNotFitIsRefused() async throws {
        var rsa = try await Self.rsaKey(kid: "k")
        rsa.jwk.alg = "ES256"
        await #expect(throws: TokenVerifier.Failure.self) {
            try await TokenVerifier(jwks: try Self.jwks([rsa.jwk]), issuer: Self.issuer)
        }
        let stored = try TokenSigner.generate(issuer: Self.issuer, type: .ec)
        var ec = try await TokenSigner(stored).jwk
        ec.alg = "ES384"
        await #expect(throws: TokenVerifier.Failure.self) {
            try await TokenVerifier(jwks: try Self.jwks([ec]), issuer: Self.issuer)
        }
        ec.alg = nil
        ec.kid = "ec"
        let signers = JWTKeyCollection()
        await signers.add(ecdsa: try ES256PrivateKey(pem: stored.privateKeyPEM), kid: "ES256")
        let verifier = try await TokenVerifier(jwks: try Self.jwks([ec]), issuer: Self.issuer)
        let es256 = try await Self.token(alg: "ES256", kid: "ec", signer: "ES256", in: signers)
        #expect(try await verifier.verify(es256)["iss"] == .string(Self.issuer))
        let es384 = try await Self.token(alg: "ES384", kid: "ec", signer: "ES256", in: signers)
        await Self.refusal(verifier, es384, mentioning: "does not verify ES384")
    }

    /// `exp`, `nbf` and `iat` must be finite numbers when present (`exp` always): a string `nbf` far in the future
    /// was ignored and the token accepted (failed before: the tokens with a non-numeric `nbf` or `iat` were
    /// accepted; a non-numeric `exp` was refused, as "expired").
    @Test func timeClaimsMustBeNumbers() async throws {
        let key = try await Self.rsaKey(kid: "k")
        let verifier = try await TokenVerifier(jwks: try Self.jwks([key.jwk]), issuer: Self.issuer)
        let cases: [(String, TokenValue?, String)] = [
            ("nbf", .string("99999999999"), "nbf is not a number"),
            ("nbf", .null, "nbf is not a number"),
            ("iat", .string("99999999999"), "iat is not a number"),
            ("iat", .bool(true), "iat is not a number"),
            ("exp", .string("99999999999"), "exp is not a number"),
            ("exp", .array([.integer(99_999_999_999)]), "exp is not a number"),
            ("exp", nil, "the token has no exp"),
        ]
        for (name, value, reason) in cases {
            var claims = Self.claims()
            claims[name] = value
            let token = try await Self.token(alg: "RS256", kid: "k", signer: "RS256", in: key.signers, claims: claims)
            await Self.refusal(verifier, token, mentioning: reason)
        }
        // Numbers still pass, whole or not; a numeric nbf in the future is refused as before.
        let now = Date().timeIntervalSince1970
        let fractional = Self.claims(["nbf": .double(now - 0.5), "iat": .double(now - 0.5)])
        let token = try await Self.token(alg: "RS256", kid: "k", signer: "RS256", in: key.signers, claims: fractional)
        #expect(try await verifier.verify(token)["iss"] == .string(Self.issuer))
        let early = Self.claims(["nbf": .integer(99_999_999_999)])
        let future = try await Self.token(alg: "RS256", kid: "k", signer: "RS256", in: key.signers, claims: early)
        await Self.refusal(verifier, future, mentioning: "not valid yet")
    }
}
