import AttestationAPI
import AttestationClient
import Testing

/// The client's checks of the key it encrypts to (`KeyBrokerClient.encryptionKey`): a name whose versions differ in
/// origin is refused (the administrator's version newest after an owner's import), and an expected origin or
/// thumbprint must match (review 5, finding 2).
@Suite("Key broker client: the key to encrypt to")
struct EncryptionKeyCheckTests {
    /// RFC 7638's example key (section 3.1) and its thumbprint.
    static let rfcKey = KeyBrokerWebKey(
        kid: "https://broker.test/keys/owned/" + String(repeating: "b", count: 32),
        kty: "RSA-HSM",
        n:
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        e: "AQAB"
    )
    static let rfcThumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

    static func bundle(_ origin: KeyOrigin?, key: KeyBrokerWebKey = rfcKey) -> KeyBundle {
        KeyBundle(key: key, attributes: KeyAttributes(enabled: true, origin: origin))
    }

    static func item(_ origin: KeyOrigin?, _ version: Character) -> KeyItem {
        KeyItem(
            kid: "https://broker.test/keys/owned/" + String(repeating: version, count: 32),
            attributes: KeyAttributes(enabled: true, origin: origin)
        )
    }

    /// The refusal's code (nil: accepted).
    static func code(
        _ bundle: KeyBundle,
        _ versions: [KeyItem]?,
        _ expecting: KeyBrokerKeyExpectation = KeyBrokerKeyExpectation()
    ) -> String? {
        do {
            try KeyBrokerClient.check(encryptionKey: bundle, versions: versions, expecting: expecting)
            return nil
        } catch let failure as AttestationClient.Failure {
            #expect(failure.status == 0)
            return failure.code
        } catch {
            return "\(error)"
        }
    }

    @Test("RFC 7638 thumbprints: the RFC's RSA example; EC members in order; none for AES")
    func thumbprints() {
        #expect(KeyBrokerClient.jwkThumbprint(Self.rfcKey) == Self.rfcThumbprint)
        let ec = KeyBrokerWebKey(kty: "EC", crv: "P-256", x: "eA", y: "eQ")
        let hsm = KeyBrokerWebKey(kty: "EC-HSM", crv: "P-256", x: "eA", y: "eQ")
        #expect(KeyBrokerClient.jwkThumbprint(ec) != nil)
        #expect(KeyBrokerClient.jwkThumbprint(ec) == KeyBrokerClient.jwkThumbprint(hsm))
        #expect(
            KeyBrokerClient.jwkThumbprint(KeyBrokerWebKey(kty: "EC", crv: "P-256", x: "eA", y: "eA"))
                != KeyBrokerClient.jwkThumbprint(ec)
        )
        #expect(KeyBrokerClient.jwkThumbprint(KeyBrokerWebKey(kty: "oct-HSM")) == nil)
        #expect(KeyBrokerClient.jwkThumbprint(KeyBrokerWebKey(kty: "RSA", e: "AQAB")) == nil)
    }

    @Test("The newest version of another origin than the earlier ones is refused; a chosen version is not compared")
    func changedOriginRefused() {
        let owner = Self.item(.owner, "a")
        let admin = Self.item(.administrator, "b")
        // The attack: an owner's key, then the administrator's version as the newest.
        #expect(Self.code(Self.bundle(.administrator), [owner, admin]) == "KeyOriginChanged")
        #expect(Self.code(Self.bundle(.owner), [owner, admin]) == "KeyOriginChanged")
        // A version unrecorded (stored before origins) beside a recorded one: refused too.
        #expect(Self.code(Self.bundle(.administrator), [Self.item(nil, "c"), admin]) == "KeyOriginChanged")
        // One origin throughout: accepted.
        #expect(Self.code(Self.bundle(.owner), [owner]) == nil)
        #expect(Self.code(Self.bundle(.administrator), [admin, Self.item(.administrator, "d")]) == nil)
        #expect(Self.code(Self.bundle(nil), [Self.item(nil, "c")]) == nil)
        // A version chosen (--version): its own checks only.
        #expect(Self.code(Self.bundle(.administrator), nil) == nil)
    }

    @Test("An expected origin or thumbprint must match the key encrypted to")
    func expectations() {
        let versions = [Self.item(.owner, "a")]
        #expect(Self.code(Self.bundle(.owner), versions, .init(origin: .owner, thumbprint: Self.rfcThumbprint)) == nil)
        #expect(Self.code(Self.bundle(.owner), versions, .init(origin: .administrator)) == "KeyOriginNotExpected")
        #expect(Self.code(Self.bundle(nil), nil, .init(origin: .owner)) == "KeyOriginNotExpected")
        let other = KeyBrokerWebKey(kty: "EC", crv: "P-256", x: "eA", y: "eQ")
        #expect(
            Self.code(Self.bundle(.owner, key: other), versions, .init(thumbprint: Self.rfcThumbprint))
                == "KeyThumbprintMismatch"
        )
        #expect(
            Self.code(
                Self.bundle(.owner, key: KeyBrokerWebKey(kty: "oct-HSM")),
                versions,
                .init(thumbprint: Self.rfcThumbprint)
            )
                == "KeyThumbprintMismatch",
            "an AES key has no public part to pin"
        )
    }
}
