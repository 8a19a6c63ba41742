import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// Issue 12 item 11: each test tampers with exactly one thing of a release that otherwise succeeds, and expects the
/// named refusal — and no key in the answer.
@Suite("KeyBroker: hostile release requests")
struct KeyReleaseAttackTests {
    typealias Code = BrokerRefusal.Code
    static let authority = TestAuthority.shared
    nonisolated(unsafe) static let target = try! _RSA.Encryption.PrivateKey(keySize: .bits2048)  // never mutated
    static var targetJWK: TokenValue { TestKeys.jwk(try! WrapJWK(rsa: target.publicKey)) }

    static func claims() -> [String: TokenValue] { authority.claims(keys: [targetJWK]) }

    /// Releases `key` (default: an exportable imported key) to `token`; expects the refusal `code`.
    static func expectRefused(
        _ token: String,
        _ code: String,
        key: StoredKey? = nil,
        nonce: String? = nil,
        mentioning text: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let request = BrokerReleaseRequest(key: try key ?? KeyReleaseTests.importedKey(), target: token, nonce: nonce)
        let response = KeyReleaseTests.broker.release(request, now: Date())
        #expect(response.value == nil, "a key was released", sourceLocation: sourceLocation)
        #expect(
            response.refusal?.code == code,
            "\(String(describing: response.refusal))",
            sourceLocation: sourceLocation
        )
        if let text {
            #expect(response.refusal?.message.contains(text) == true, sourceLocation: sourceLocation)
        }
    }

    @Test func theUntamperedTokenIsReleased() throws {
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(
                key: try KeyReleaseTests.importedKey(),
                target: try Self.authority.token(Self.claims())
            ),
            now: Date()
        )
        #expect(response.value != nil && response.refusal == nil)
    }

    @Test func expired() throws {
        var claims = Self.claims()
        claims["exp"] = .integer(Int(Date().timeIntervalSince1970) - 120)
        try Self.expectRefused(try Self.authority.token(claims), Code.tokenExpired)
    }

    @Test func withoutExpiry() throws {
        var claims = Self.claims()
        claims["exp"] = nil
        try Self.expectRefused(try Self.authority.token(claims), Code.tokenExpired)
    }

    @Test func futureDated() throws {
        var claims = Self.claims()
        claims["nbf"] = .integer(Int(Date().timeIntervalSince1970) + 3600)
        try Self.expectRefused(try Self.authority.token(claims), Code.tokenNotYetValid)
    }

    @Test func wronglySigned() throws {
        // Another key signs, naming the pinned certificate's kid.
        let impostor = try TestAuthority(url: Self.authority.url)
        let token = try impostor.token(Self.claims(), header: ["kid": .string(Self.authority.kid)])
        try Self.expectRefused(token, Code.invalidSignature)
    }

    @Test func payloadChangedAfterSigning() throws {
        let token = try Self.authority.token(Self.claims())
        var claims = Self.claims()
        claims["x-ms-sgx-svn"] = .integer(99)
        let parts = token.split(separator: ".")
        try Self.expectRefused(parts[0] + "." + TestAuthority.encode(claims) + "." + parts[2], Code.invalidSignature)
    }

    @Test func algNone() throws {
        let header = TestAuthority.encode(["alg": .string("none"), "kid": .string(Self.authority.kid)])
        try Self.expectRefused(header + "." + TestAuthority.encode(Self.claims()) + ".", Code.algorithmNotAllowed)
    }

    @Test func hmacWithTheAuthoritysPublicKeyAsSecret() throws {
        let header = TestAuthority.encode(["alg": .string("HS256"), "kid": .string(Self.authority.kid)])
        let input = header + "." + TestAuthority.encode(Self.claims())
        for secret in [Self.authority.certificateDER, Array(Self.authority.key.publicKey.derRepresentation)] {
            let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
            try Self.expectRefused(input + "." + Base64URL.encode(Array(mac)), Code.algorithmNotAllowed)
        }
    }

    @Test func unknownKeyID() throws {
        let token = try Self.authority.token(Self.claims(), header: ["kid": .string("not-a-pinned-kid")])
        try Self.expectRefused(token, Code.unknownKeyID)
        // No kid at all.
        var header: [String: TokenValue] = ["alg": .string("RS256")]
        header["typ"] = .string("JWT")
        let input = TestAuthority.encode(header) + "." + TestAuthority.encode(Self.claims())
        let signature = try Self.authority.key.signature(
            for: SHA256.hash(data: Array(input.utf8)),
            padding: .insecurePKCS1v1_5
        )
        try Self.expectRefused(input + "." + Base64URL.encode(Array(signature.rawRepresentation)), Code.unknownKeyID)
    }

    @Test func untrustedIssuer() throws {
        // A well-formed token of an authority the broker does not trust, even naming a trusted URL's kid.
        let other = TestAuthority.other
        try Self.expectRefused(try other.token(other.claims(keys: [Self.targetJWK])), Code.untrustedIssuer)
    }

    @Test func jkuAndX5uAreNeverUsed() throws {
        // The attacker signs with its own key and points jku/x5u (and an inline jwk/x5c) at it: refused, not fetched.
        let attacker = try TestAuthority(url: Self.authority.url)
        let pointers: [String: TokenValue] = [
            "jku": .string("https://attacker.example/certs"), "x5u": .string("https://attacker.example/cert.pem"),
            "x5c": .array([.string(Data(attacker.certificateDER).base64EncodedString())]),
        ]
        try Self.expectRefused(try attacker.token(Self.claims(), header: pointers), Code.unknownKeyID)
        // With the authority's own signature the same headers are ignored: the pinned key decides.
        let honest = try Self.authority.token(Self.claims(), header: pointers)
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: honest),
            now: Date()
        )
        #expect(response.value != nil)
    }

    @Test func noRuntimeKeys() throws {
        var claims = Self.claims()
        claims["x-ms-runtime"] = .object(["client-payload": .object(["nonce": .string("x")])])
        try Self.expectRefused(try Self.authority.token(claims), Code.noRuntimeKey)
        claims["x-ms-runtime"] = nil
        try Self.expectRefused(try Self.authority.token(claims), Code.noRuntimeKey)
    }

    @Test func rsaTargetUnder2048Bits() throws {
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let primitives = try weak.publicKey.getKeyPrimitives()
        let jwk = WrapJWK(
            kty: "RSA",
            n: Base64URL.encode(Array(primitives.modulus)),
            e: Base64URL.encode(Array(primitives.publicExponent))
        )
        try Self.expectRefused(
            try Self.authority.token(Self.authority.claims(keys: [TestKeys.jwk(jwk)])),
            Code.targetKeyTooWeak
        )
    }

    @Test func ecTargetOnAnUnsupportedCurve() throws {
        let p521 = P521.KeyAgreement.PrivateKey().publicKey.rawRepresentation
        let jwk = WrapJWK(
            kty: "EC",
            crv: "P-521",
            x: Base64URL.encode(Array(p521.prefix(66))),
            y: Base64URL.encode(Array(p521.suffix(66)))
        )
        try Self.expectRefused(
            try Self.authority.token(Self.authority.claims(keys: [TestKeys.jwk(jwk)])),
            Code.unsupportedCurve
        )
    }

    @Test func policyNotSatisfiedNamesTheCondition() throws {
        let token = try Self.authority.token(Self.authority.claims(keys: [Self.targetJWK], svn: 1))
        try Self.expectRefused(token, Code.policyNotSatisfied, mentioning: "anyOf[0].allOf[1]")
    }

    @Test func nonExportableKey() throws {
        // With a policy the token satisfies: only `exportable` stands in the way.
        let key = try KeyReleaseTests.importedKey(policy: TestKeys.policy(), exportable: false)
        try Self.expectRefused(try Self.authority.token(Self.claims()), Code.keyNotExportable, key: key)
    }

    @Test func nonceMismatch() throws {
        var claims = Self.claims()
        claims["nonce"] = .string("nonce-1")
        let token = try Self.authority.token(claims)
        try Self.expectRefused(token, Code.nonceMismatch, nonce: "nonce-2")
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: token, nonce: "nonce-1"),
            now: Date()
        )
        #expect(response.value != nil)
    }

    @Test func hostFlipsExportableOrSwapsThePolicy() throws {
        var key = try KeyReleaseTests.importedKey(policy: TestKeys.policy(minimumSVN: 9))
        let token = try Self.authority.token(Self.claims())
        var looser = key
        looser.attributes.releasePolicy = TestKeys.policy(minimumSVN: 0)
        try Self.expectRefused(token, Code.keyBlobInvalid, key: looser)
        key = try KeyReleaseTests.importedKey(policy: TestKeys.policy(), exportable: false)
        key.attributes.exportable = true
        try Self.expectRefused(token, Code.keyBlobInvalid, key: key)
        // A blob moved to another key's name.
        var moved = try KeyReleaseTests.importedKey()
        moved.name = "other-key"
        try Self.expectRefused(token, Code.keyBlobInvalid, key: moved)
    }

    @Test func duplicateClaimIsMalformed() throws {
        let header = TestAuthority.encode(["alg": .string("RS256"), "kid": .string(Self.authority.kid)])
        let payload = Base64URL.encode(Array(#"{"iss":"https://attest.example","iss":"https://attest.example"}"#.utf8))
        try Self.expectRefused(header + "." + payload + ".AA", Code.malformedToken)
    }
}
