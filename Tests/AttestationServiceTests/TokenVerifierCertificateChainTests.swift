import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import Foundation
import JWTKit
import SwiftASN1
import Testing
import X509
import _CryptoExtras

/// Keys given by their certificate (`x5c`) only, as Microsoft Azure Attestation's `/certs` publishes them: the
/// verifier reads the key from the first certificate, refuses a key whose stated members differ from it, and names
/// the key of a chain that is not base64 DER certificates. Tokens are made with `TokenVerifierAlgorithmTests`' helpers.
@Suite("TokenVerifier: keys given by their certificate chain (x5c), as MAA publishes them")
struct TokenVerifierCertificateChainTests {
    typealias Helpers = TokenVerifierAlgorithmTests

    /// A kid as MAA writes them (base64 of the certificate's SHA-256, with `+`, `/` and `=`).
    static let maaKid = "dRKh+hBcWUfQimSl3Iv6ZhStW3TSOt0ThwiTgUUqZAo="

    /// A key with its self-signed certificate (base64 DER, as `x5c` holds it), its public members as a JWK states
    /// them (`n`/`e` or `crv`/`x`/`y`), and a signer under the kid of its algorithm.
    struct CertifiedKey {
        var certificate: [UInt8]
        var members: [String: String]
        var signers: JWTKeyCollection
        var x5c: String { Data(certificate).base64EncodedString() }
    }

    static func selfSigned(
        _ key: Certificate.PrivateKey,
        _ algorithm: Certificate.SignatureAlgorithm
    ) throws -> [UInt8] {
        let certificate = try Certificate.selfSigned(key, algorithm, commonName: "x5c test signer")
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// An RSA 2048 key, as MAA signs with; the signer's kid is `RS256`.
    static func rsaKey() async throws -> CertifiedKey {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let primitives = try key.publicKey.getKeyPrimitives()
        let signers = JWTKeyCollection()
        await signers.add(rsa: try Insecure.RSA.PrivateKey(backing: key), digestAlgorithm: .sha256, kid: "RS256")
        return CertifiedKey(
            certificate: try selfSigned(.init(key), .sha256WithRSAEncryption),
            members: [
                "n": Base64URL.encode(primitives.modulus.drop { $0 == 0 }),
                "e": Base64URL.encode(primitives.publicExponent.drop { $0 == 0 }),
            ],
            signers: signers
        )
    }

    /// A P-384 key; the signer's kid is `ES384`.
    static func p384Key() async throws -> CertifiedKey {
        let key = P384.Signing.PrivateKey()
        let point = key.publicKey.rawRepresentation
        let signers = JWTKeyCollection()
        await signers.add(ecdsa: try ES384PrivateKey(pem: key.pemRepresentation), kid: "ES384")
        return CertifiedKey(
            certificate: try selfSigned(.init(key), .ecdsaWithSHA384),
            members: [
                "crv": "P-384", "x": Base64URL.encode(point.prefix(48)), "y": Base64URL.encode(point.suffix(48)),
            ],
            signers: signers
        )
    }

    /// A JWKS of one key: `members` as given (a JSON value each), in the order MAA writes them.
    static func jwks(_ members: [(String, String)]) -> String {
        let key = members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
        return "{\"keys\":[{\(key)}]}"
    }

    static func string(_ text: String) -> String { "\"\(text)\"" }

    /// A key of kty `kty` with `kid`, `x5c` holding `chain`, and `members` (strings).
    static func jwks(kty: String, kid: String = maaKid, chain: [String], members: [String: String] = [:]) -> String {
        let x5c = "[" + chain.map(string).joined(separator: ",") + "]"
        return jwks(
            [("x5c", x5c), ("kid", string(kid)), ("kty", string(kty))]
                + members.sorted { $0.key < $1.key }.map { ($0.key, string($0.value)) }
        )
    }

    static func refused(
        _ jwks: String,
        mentioning reasons: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let failure = await #expect(throws: TokenVerifier.Failure.self, sourceLocation: sourceLocation) {
            try await TokenVerifier(jwks: jwks, issuer: Helpers.issuer)
        }
        for reason in reasons {
            #expect(
                failure?.reason.contains(reason) == true,
                "\(String(describing: failure)) should mention \(reason)",
                sourceLocation: sourceLocation
            )
        }
    }

    /// MAA's `/certs` shape, `{"keys":[{"x5c":[…],"kid":…,"kty":"RSA"}]}`: JWTKit refused the key for lacking `n`
    /// and `e`, so no relying party could use this verifier against MAA (failed before: the verifier was not made,
    /// JWTKit's "Missing RSA primitives"). The key is the certificate's: a token of another key under the kid does
    /// not verify.
    @Test func maaShapedKeySetVerifies() async throws {
        let key = try await Self.rsaKey()
        let verifier = try await TokenVerifier(
            jwks: Self.jwks(kty: "RSA", chain: [key.x5c]),
            issuer: Helpers.issuer
        )
        let token = try await Helpers.token(alg: "RS256", kid: Self.maaKid, signer: "RS256", in: key.signers)
        #expect(try await verifier.verify(token)["iss"] == .string(Helpers.issuer))
        let other = try await Self.rsaKey()
        let forged = try await Helpers.token(alg: "RS256", kid: Self.maaKid, signer: "RS256", in: other.signers)
        await Helpers.refusal(verifier, forged, mentioning: "the signature does not verify")
        // Both ways the service publishes its key set (AttestationAPI's types, n/e and x5c) still verify.
        let stored = try TokenSigner.generate(issuer: Helpers.issuer, type: .rsa)
        let signer = try await TokenSigner(stored)
        let published = try await TokenVerifier(jwks: signer.jwksJSON, issuer: Helpers.issuer)
        let serviceToken = try await signer.sign(Helpers.claims(), jku: "\(Helpers.issuer)/certs")
        #expect(try await published.verify(serviceToken)["iss"] == .string(Helpers.issuer))
        var bare = signer.jwk
        (bare.n, bare.e) = (nil, nil)
        let certificateOnly = try await TokenVerifier(
            jwks: try Helpers.jwks([bare]),
            issuer: Helpers.issuer
        )
        #expect(try await certificateOnly.verify(serviceToken)["iss"] == .string(Helpers.issuer))
    }

    /// An EC key by its certificate only: the curve comes from the certificate too, and fixes the algorithm
    /// (failed before: the verifier was not made).
    @Test func anECKeyGivenByItsCertificate() async throws {
        let key = try await Self.p384Key()
        let verifier = try await TokenVerifier(jwks: Self.jwks(kty: "EC", chain: [key.x5c]), issuer: Helpers.issuer)
        let es384 = try await Helpers.token(alg: "ES384", kid: Self.maaKid, signer: "ES384", in: key.signers)
        #expect(try await verifier.verify(es384)["iss"] == .string(Helpers.issuer))
        let es256 = try await Helpers.token(alg: "ES256", kid: Self.maaKid, signer: "ES384", in: key.signers)
        await Helpers.refusal(verifier, es256, mentioning: "does not verify ES256")
        // With its members stated, equal to the certificate's, it verifies the same.
        let stated = try await TokenVerifier(
            jwks: Self.jwks(kty: "EC", chain: [key.x5c], members: key.members),
            issuer: Helpers.issuer
        )
        #expect(try await stated.verify(es384)["iss"] == .string(Helpers.issuer))
    }

    /// A key whose members differ from its certificate's key is refused, not resolved either way (failed before:
    /// the x5c was ignored and the n/e or x/y of another key were taken).
    @Test func membersThatDifferFromTheCertificateAreRefused() async throws {
        let rsa = try await Self.rsaKey()
        let otherRSA = try await Self.rsaKey()
        let p384 = try await Self.p384Key()
        let otherP384 = try await Self.p384Key()
        var cases: [(String, [String])] = [
            (Self.jwks(kty: "RSA", chain: [rsa.x5c], members: otherRSA.members), ["\(Self.maaKid)'s n differs"]),
            (
                Self.jwks(kty: "RSA", chain: [rsa.x5c], members: ["n": rsa.members["n"]!, "e": "Aw"]),
                ["\(Self.maaKid)'s e differs"]
            ),
            (
                Self.jwks(kty: "RSA", chain: [rsa.x5c], members: ["n": rsa.members["n"]!]),
                ["\(Self.maaKid) states only one of n and e"]
            ),
            (
                Self.jwks(kty: "RSA", chain: [rsa.x5c], members: ["n": "!!", "e": rsa.members["e"]!]),
                ["\(Self.maaKid)'s n differs"]
            ),
            (Self.jwks(kty: "EC", chain: [p384.x5c], members: otherP384.members), ["\(Self.maaKid)'s x differs"]),
            (
                Self.jwks(kty: "EC", chain: [p384.x5c], members: p384.members.merging(["crv": "P-256"]) { $1 }),
                ["\(Self.maaKid)'s crv P-256 differs from its x5c certificate's P-384"]
            ),
            (Self.jwks(kty: "RSA", chain: [p384.x5c]), ["\(Self.maaKid) is RSA but its x5c certificate holds"]),
            (Self.jwks(kty: "EC", chain: [rsa.x5c]), ["\(Self.maaKid) is EC but its x5c certificate holds"]),
        ]
        var swapped = p384.members
        swapped["y"] = otherP384.members["y"]
        cases.append((Self.jwks(kty: "EC", chain: [p384.x5c], members: swapped), ["\(Self.maaKid)'s y differs"]))
        for (jwks, reasons) in cases {
            await Self.refused(jwks, mentioning: reasons)
        }
        // The same members with their own certificate are taken.
        _ = try await TokenVerifier(
            jwks: Self.jwks(kty: "RSA", chain: [rsa.x5c], members: rsa.members),
            issuer: Helpers.issuer
        )
    }

    /// A chain that is not base64 DER certificates is refused naming the key and the entry (failed before: JWTKit's
    /// "Missing RSA primitives", or, beside n/e, the chain was not read at all): every prefix of a valid certificate,
    /// trailing bytes, base64url instead of base64, an empty or overlong chain, and junk after a valid first
    /// certificate.
    @Test func malformedChainsAreRefusedNamingTheKey() async throws {
        let key = try await Self.rsaKey()
        let der = key.certificate
        let kid = "garbage-key"
        for length in 0..<der.count {
            let prefix = Data(der.prefix(length)).base64EncodedString()
            let reason = length == 0 ? "\(kid)'s x5c[0] is not base64" : "\(kid)'s x5c[0] is not a DER X.509"
            await Self.refused(Self.jwks(kty: "RSA", kid: kid, chain: [prefix]), mentioning: [reason])
        }
        let cases: [([String], String)] = [
            ([Data(der + [0]).base64EncodedString()], "\(kid)'s x5c[0] is not a DER X.509 certificate"),
            (["not base64!"], "\(kid)'s x5c[0] is not base64"),
            ([Base64URL.encode(der) + "-_"], "\(kid)'s x5c[0] is not base64"),
            ([], "\(kid)'s x5c is empty"),
            (Array(repeating: key.x5c, count: 17), "\(kid)'s x5c has 17 certificates, at most 16"),
            ([key.x5c, "AAAA"], "\(kid)'s x5c[1] is not a DER X.509 certificate"),
            ([key.x5c, "%%%%"], "\(kid)'s x5c[1] is not base64"),
        ]
        for (chain, reason) in cases {
            await Self.refused(Self.jwks(kty: "RSA", kid: kid, chain: chain), mentioning: [reason])
            // Beside n and e the chain is read and refused the same.
            await Self.refused(
                Self.jwks(kty: "RSA", kid: kid, chain: chain, members: key.members),
                mentioning: [reason]
            )
        }
        // An x5c that is not an array of strings does not parse.
        await Self.refused(
            Self.jwks([("x5c", Self.string(key.x5c)), ("kid", Self.string(kid)), ("kty", Self.string("RSA"))]),
            mentioning: ["the JWKS does not parse"]
        )
        // A chain of the certificate and a second one (an issuer's, unchecked) is taken: the first holds the key.
        let issuer = try await Self.p384Key()
        let verifier = try await TokenVerifier(
            jwks: Self.jwks(kty: "RSA", kid: kid, chain: [key.x5c, issuer.x5c]),
            issuer: Helpers.issuer
        )
        let token = try await Helpers.token(alg: "RS256", kid: kid, signer: "RS256", in: key.signers)
        #expect(try await verifier.verify(token)["iss"] == .string(Helpers.issuer))
    }
}
