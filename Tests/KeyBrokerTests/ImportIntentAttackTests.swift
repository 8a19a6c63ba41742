import Crypto
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// Bring your own key: the owner binds the key's name, type, operations, attributes, release policy and the broker's
/// authority pins into the wrapped payload, so the broker's host can neither replay the wrapped bytes under its own
/// name or policy nor import them into an instance that trusts a forged certificate.
@Suite("KeyBroker: the owner's import intent", .serialized)
struct ImportIntentAttackTests {
    static let secret: [UInt8] = (0..<32).map { UInt8(($0 * 7 + 3) & 0xFF) }

    /// A broker trusting `authority` over a fresh keyring.
    static func broker(_ authority: TestAuthority = .shared) throws -> KeyBroker {
        try KeyBroker(
            keyring: try BrokerKeyring.generate(name: "https://broker.example"),
            authorities: [authority.brokerAuthority],
            name: "https://broker.example"
        )
    }

    /// The pins `broker` trusts, as an owner verified them in its evidence.
    static func pins(_ broker: KeyBroker) -> [String: Set<String>] {
        var pins: [String: Set<String>] = [:]
        for authority in broker.pinnedAuthorities.authorities { pins[authority.url] = Set(authority.thumbprints) }
        return pins
    }

    /// The owner's intent: `name`, AES, exportable under the test policy, immutable.
    static func intent(name: String, pins: [String: Set<String>]) -> ImportIntent {
        ImportIntent(
            name: name,
            type: BrokerKeyType.aes256.rawValue,
            operations: [],
            exportable: true,
            immutable: true,
            releasePolicy: TestKeys.policy(),
            pins: pins
        )
    }

    /// `payload` wrapped to `broker`'s import key.
    static func wrap(_ payload: [UInt8], for broker: KeyBroker) throws -> [UInt8] {
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(broker.importKeyJWK.utf8))
        guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
            throw KeyBrokerError("test", "the import key is not RSA")
        }
        return try RSAAESKeyWrap.wrap(payload, to: importKey)
    }

    static func request(
        name: String,
        wrapped: [UInt8],
        exportable: Bool = true,
        policy: [UInt8]? = TestKeys.policy(),
        immutable: Bool = true
    ) -> BrokerImportKeyRequest {
        BrokerImportKeyRequest(
            name: name,
            version: "v1",
            type: .aes256,
            wrappedKey: wrapped,
            attributes: BrokerKeyAttributes(exportable: exportable, releasePolicy: policy, immutable: immutable)
        )
    }

    /// The code `body` is refused with, or `nil` when it stored a key.
    static func refusal(_ body: () throws(KeyBrokerError) -> StoredKey) -> String? {
        do {
            let stored = try body()
            Issue.record("the broker stored \(stored.name) under a request the owner did not make")
            return nil
        } catch { return error.code }
    }

    /// (1) The host replays an owner's wrapped key under its own name and a policy naming its own authority.
    @Test func aReplayUnderAnotherNameAndPolicyIsRefused() throws {
        let broker = try Self.broker()
        let wrapped = try Self.wrap(
            Self.intent(name: "owner-key", pins: Self.pins(broker)).payload(Self.secret),
            for: broker
        )
        let hostPolicy = TestKeys.policy(authority: "https://host.example", minimumSVN: 0)
        let code = Self.refusal { () throws(KeyBrokerError) in
            try broker.importKey(Self.request(name: "host-key", wrapped: wrapped, policy: hostPolicy, immutable: false))
        }
        #expect(code == KeyBrokerError.importIntentMismatch)
        let renamed = Self.refusal { () throws(KeyBrokerError) in
            try broker.importKey(Self.request(name: "host-key", wrapped: wrapped))
        }
        #expect(renamed == KeyBrokerError.importIntentMismatch)
    }

    /// (2) The same bytes with `exportable` or `immutable` flipped, or another policy, under the owner's name.
    @Test func theSameBytesWithOtherAttributesAreRefused() throws {
        let broker = try Self.broker()
        let wrapped = try Self.wrap(
            Self.intent(name: "owner-key", pins: Self.pins(broker)).payload(Self.secret),
            for: broker
        )
        let variants: [BrokerImportKeyRequest] = [
            Self.request(name: "owner-key", wrapped: wrapped, exportable: false, policy: nil, immutable: false),
            Self.request(name: "owner-key", wrapped: wrapped, immutable: false),
            Self.request(name: "owner-key", wrapped: wrapped, policy: TestKeys.policy(minimumSVN: 0)),
        ]
        for request in variants {
            let code = Self.refusal { () throws(KeyBrokerError) in try broker.importKey(request) }
            #expect(code == KeyBrokerError.importIntentMismatch, "\(request.attributes)")
        }
    }

    /// (3) The owner verified a genuine instance's pins; the host imports into an instance of the same keyring
    /// opened with a forged certificate for the same authority URL.
    @Test func anImportIntoAnInstanceTrustingAForgedCertificateIsRefused() throws {
        let keyring = try BrokerKeyring.generate(name: "https://broker.example")
        let genuine = try KeyBroker(
            keyring: keyring,
            authorities: [TestAuthority.shared.brokerAuthority],
            name: "https://broker.example"
        )
        let forged = try TestAuthority(url: TestAuthority.shared.url)
        let hostile = try KeyBroker(
            keyring: keyring,
            authorities: [forged.brokerAuthority],
            name: "https://broker.example"
        )
        let wrapped = try Self.wrap(
            Self.intent(name: "owner-key", pins: Self.pins(genuine)).payload(Self.secret),
            for: genuine
        )
        let code = Self.refusal { () throws(KeyBrokerError) in
            try hostile.importKey(Self.request(name: "owner-key", wrapped: wrapped))
        }
        #expect(code == KeyBrokerError.importIntentMismatch)
    }

    /// (4) Bare key material, without the intent prefix.
    @Test func bareMaterialIsRefused() throws {
        let broker = try Self.broker()
        let wrapped = try Self.wrap(Self.secret, for: broker)
        let code = Self.refusal { () throws(KeyBrokerError) in
            try broker.importKey(Self.request(name: "owner-key", wrapped: wrapped))
        }
        #expect(code == KeyBrokerError.importIntentMissing)
    }

    /// (5) The owner's own import is stored with the material alone and released as before.
    @Test func theGenuineImportIsStoredAndReleased() throws {
        let broker = try Self.broker()
        let wrapped = try Self.wrap(
            Self.intent(name: "owner-key", pins: Self.pins(broker)).payload(Self.secret),
            for: broker
        )
        let key = try broker.importKey(Self.request(name: "owner-key", wrapped: wrapped))
        #expect(key.attributes.immutable)
        let target = P256.KeyAgreement.PrivateKey()
        let token = try TestAuthority.shared.token(
            TestAuthority.shared.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))])
        )
        let response = broker.release(BrokerReleaseRequest(key: key, target: token), now: Date())
        let value = try #require(response.value, "\(String(describing: response.refusal))")
        let answer = try ReleaseAnswer(jws: value, brokerKey: broker.keyring.signingKey.publicKey)
        let jwe = String(decoding: try #require(answer.keyHSM.ciphertextBytes), as: UTF8.self)
        #expect(try ECDHESJWE.decrypt(jwe, with: target).plaintext == Self.secret)
    }
}
