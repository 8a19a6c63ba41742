import AttestationAPI
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// Each key records in its envelope the signing certificates (thumbprints) of the authorities its release policy
/// names, as the broker trusted them when the key (or its policy) was made; a release needs a token signed with one
/// of those that the broker still trusts. The envelope authenticates the pins; the evidence names the broker's own.
@Suite("KeyBroker: authority pins in keys and evidence", .serialized)
struct AuthorityPinTests {
    typealias Code = BrokerRefusal.Code
    static let certificateB = try! TestAuthority(url: TestAuthority.shared.url)
    static let keyring = try! BrokerKeyring.generate(name: "https://broker.example")

    /// A broker over the shared keyring trusting `authorities`.
    static func broker(_ authorities: [BrokerAuthority]) throws -> KeyBroker {
        try KeyBroker(keyring: keyring, authorities: authorities, name: "https://broker.example")
    }

    static var onlyA: KeyBroker { try! broker([TestAuthority.shared.brokerAuthority]) }

    static func release(_ key: StoredKey, by broker: KeyBroker, signer: TestAuthority) throws -> BrokerReleaseResponse {
        let target = P256.KeyAgreement.PrivateKey()
        let token = try signer.token(signer.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))]))
        return broker.release(BrokerReleaseRequest(key: key, target: token), now: Date())
    }

    @Test func aKeyMadeUnderCertificateAIsNotReleasedWithACertificateBAddedLater() throws {
        let key = try AuthorityPinAttackTests.importSecret(into: Self.onlyA, immutable: true)
        #expect(key.pinnedAuthorities?.thumbprints(for: TestAuthority.shared.url) == [TestAuthority.shared.kid])
        // The administrator (or the host) adds certificate B for the same authority.
        let both = try Self.broker([
            BrokerAuthority(
                url: TestAuthority.shared.url,
                certificates: [TestAuthority.shared.certificateDER, Self.certificateB.certificateDER]
            )
        ])
        let refused = try Self.release(key, by: both, signer: Self.certificateB)
        #expect(refused.value == nil)
        #expect(refused.refusal?.code == Code.authorityCertificateNotPinned, "\(String(describing: refused.refusal))")
        #expect(refused.audit.verified, "the audit record has the verified token's claims")
        let released = try Self.release(key, by: both, signer: TestAuthority.shared)
        #expect(released.value != nil, "\(String(describing: released.refusal))")
        // A key made now is pinned to both.
        let newer = try AuthorityPinAttackTests.importSecret(into: both, immutable: true)
        #expect(
            newer.pinnedAuthorities?.thumbprints(for: TestAuthority.shared.url)
                == [TestAuthority.shared.kid, Self.certificateB.kid].sorted()
        )
        #expect(try Self.release(newer, by: both, signer: Self.certificateB).value != nil)
    }

    @Test func aCertificateNoLongerTrustedReleasesNothingEvenIfTheKeyPinsIt() throws {
        let key = try AuthorityPinAttackTests.importSecret(into: Self.onlyA, immutable: true)
        // The administrator revoked A (pins only B now): the key's pin alone is not enough.
        let onlyB = try Self.broker([Self.certificateB.brokerAuthority])
        let response = try Self.release(key, by: onlyB, signer: TestAuthority.shared)
        #expect(response.value == nil)
        #expect(response.refusal?.code == Code.unknownKeyID, "\(String(describing: response.refusal))")
    }

    @Test func keysArePinnedOnlyToTheAuthoritiesTheirPolicyNames() throws {
        let broker = try Self.broker([TestAuthority.shared.brokerAuthority, TestAuthority.other.brokerAuthority])
        let key = try AuthorityPinAttackTests.importSecret(into: broker, immutable: false)
        let pins = try #require(key.pinnedAuthorities)
        #expect(pins.authorities.map(\.url) == [TestAuthority.shared.url])
        #expect(broker.pinnedAuthorities.authorities.map(\.url) == [TestAuthority.shared.url, TestAuthority.other.url])
        // A key without a policy has no pins.
        let plain = try broker.createKey(
            BrokerCreateKeyRequest(
                name: "plain",
                version: "v1",
                type: .aes256,
                attributes: BrokerKeyAttributes(exportable: false, releasePolicy: nil, immutable: false)
            )
        )
        #expect(plain.pinnedAuthorities == AuthorityPins.none)
    }

    /// Only the administrator's keys have a mutable policy: an owner's import is stored immutable (it is re-pinned by
    /// importing it again under a new name; OwnerPolicyImmutableAttackTests).
    @Test func aPolicyUpdateOfAMutableKeyRepinsToTheCurrentCertificates() throws {
        let key = try Self.onlyA.createKey(
            BrokerCreateKeyRequest(
                name: "admin-key",
                version: "v1",
                type: .aes256,
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: false)
            )
        )
        let onlyB = try Self.broker([Self.certificateB.brokerAuthority])
        #expect(
            try Self.release(key, by: onlyB, signer: Self.certificateB).refusal?.code
                == Code.authorityCertificateNotPinned
        )
        let updated = try onlyB.updatePolicy(BrokerUpdatePolicyRequest(key: key, attributes: key.attributes))
        #expect(updated.pinnedAuthorities?.thumbprints(for: TestAuthority.shared.url) == [Self.certificateB.kid])
        #expect(try Self.release(updated, by: onlyB, signer: Self.certificateB).value != nil)
        // An immutable key's pins never change: its policy can't be updated, so no new pins either. An owner's import
        // is immutable even when it asked for a mutable policy.
        for asked in [true, false] {
            let fixed = try AuthorityPinAttackTests.importSecret(into: Self.onlyA, immutable: asked)
            #expect(throws: KeyBrokerError(KeyBrokerError.policyImmutable, "the key's release policy is immutable")) {
                _ = try onlyB.updatePolicy(BrokerUpdatePolicyRequest(key: fixed, attributes: fixed.attributes))
            }
        }
    }

    @Test func aTamperedPinListDoesNotOpen() throws {
        let key = try AuthorityPinAttackTests.importSecret(into: Self.onlyA, immutable: true)
        let broker = try Self.broker([
            BrokerAuthority(
                url: TestAuthority.shared.url,
                certificates: [TestAuthority.shared.certificateDER, Self.certificateB.certificateDER]
            )
        ])
        // The host rewrites the header's pins to certificate B's thumbprint (same length, canonical form).
        var tampered = key
        let original = Array(TestAuthority.shared.kid.utf8)
        let replacement = Array(Self.certificateB.kid.utf8)
        let start = try #require(Self.index(of: original, in: key.blob))
        tampered.blob.replaceSubrange(start..<start + original.count, with: replacement)
        #expect(tampered.pinnedAuthorities?.thumbprints(for: TestAuthority.shared.url) == [Self.certificateB.kid])
        let response = try Self.release(tampered, by: broker, signer: Self.certificateB)
        #expect(response.value == nil)
        #expect(response.refusal?.code == Code.keyBlobInvalid, "\(String(describing: response.refusal))")
        // Pins added in front of the ciphertext (a whole new header) don't open either.
        let forgedHeader =
            [StoredKey.blobFormat] + (try AuthorityPins([TestAuthority.shared.url: [Self.certificateB.kid]])).bytes
        let headerLength = 1 + (key.pinnedAuthorities?.bytes.count ?? 0)
        var swapped = key
        swapped.blob = forgedHeader + Array(key.blob[headerLength...])
        #expect(try Self.release(swapped, by: broker, signer: Self.certificateB).refusal?.code == Code.keyBlobInvalid)
        // Nor does a header with no pins at all, nor the pins of a non-canonical encoding.
        var emptied = key
        emptied.blob = [StoredKey.blobFormat, 0, 0] + Array(key.blob[headerLength...])
        #expect(
            try Self.release(emptied, by: broker, signer: TestAuthority.shared).refusal?.code == Code.keyBlobInvalid
        )
        #expect(throws: KeyBrokerError.self) {
            _ = try broker.updatePolicy(BrokerUpdatePolicyRequest(key: tampered, attributes: key.attributes))
        }
    }

    @Test func anOldFormatBlobIsRefusedByName() throws {
        var key = try AuthorityPinAttackTests.importSecret(into: Self.onlyA, immutable: true)
        key.blob[0] = 1
        let response = try Self.release(key, by: Self.onlyA, signer: TestAuthority.shared)
        #expect(response.value == nil)
        #expect(response.refusal?.code == Code.keyBlobOutdated, "\(String(describing: response.refusal))")
        #expect(response.refusal?.message.contains("re-create or re-import") == true)
    }

    @Test func pinsHaveOneEncoding() throws {
        let pins = try AuthorityPins([
            "https://b.example": [TestAuthority.shared.kid, Self.certificateB.kid],
            "https://a.example": [TestAuthority.other.kid],
        ])
        #expect(pins.authorities.map(\.url) == ["https://a.example", "https://b.example"])
        #expect(try AuthorityPins(bytes: pins.bytes) == pins)
        // Trailing bytes, authorities out of order, a duplicate thumbprint, a short thumbprint: refused.
        #expect(throws: EnclaveError.self) { _ = try AuthorityPins(bytes: pins.bytes + [0]) }
        var reordered = ByteWriterForTests()
        reordered.authority("https://b.example", [TestAuthority.shared.kid])
        reordered.authority("https://a.example", [TestAuthority.other.kid])
        #expect(throws: EnclaveError.self) { _ = try AuthorityPins(bytes: reordered.bytes(count: 2)) }
        var duplicate = ByteWriterForTests()
        duplicate.authority("https://a.example", [TestAuthority.other.kid, TestAuthority.other.kid])
        #expect(throws: EnclaveError.self) { _ = try AuthorityPins(bytes: duplicate.bytes(count: 1)) }
        #expect(throws: EnclaveError.self) { _ = try AuthorityPins(["https://a.example": ["short"]]) }
    }

    /// The broker enclave's evidence names every trusted authority with its certificates' thumbprints, in order.
    @Test func theBrokerEnclavesRuntimeDataNamesItsAuthoritiesAndThumbprints() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let enclave = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1),
            on: platform
        )
        let opened = try await enclave.call(
            BrokerOpen.self,
            BrokerOpenRequest(
                sealedKeyring: nil,
                authorities: [
                    BrokerAuthority(
                        url: "HTTPS://Attest.Example:443/",
                        certificates: [Self.certificateB.certificateDER, TestAuthority.shared.certificateDER]
                    ),
                    TestAuthority.other.brokerAuthority,
                ],
                brokerName: "https://broker.test"
            )
        )
        await enclave.terminate()
        let runtime = try JSONDecoder().decode(TokenValue.self, from: Data(opened.runtimeData))
        let expected: TokenValue = .array([
            .object([
                "url": .string("https://attest.example"),
                "thumbprints": .array(
                    [TestAuthority.shared.kid, Self.certificateB.kid].sorted().map(TokenValue.string)
                ),
            ]),
            .object([
                "url": .string("https://other.example"), "thumbprints": .array([.string(TestAuthority.other.kid)]),
            ]),
        ])
        #expect(runtime.objectMember("authorities") == expected)
    }

    static func index(of needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        return (0...(bytes.count - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle }
    }
}

/// Pins written by hand (little endian, as ``AuthorityPins/bytes``), to make encodings the type would never write.
struct ByteWriterForTests {
    var body: [UInt8] = []

    mutating func authority(_ url: String, _ thumbprints: [String]) {
        body += Self.u16(url.utf8.count) + Array(url.utf8) + Self.u16(thumbprints.count)
        for thumbprint in thumbprints { body += Array(thumbprint.utf8) }
    }

    func bytes(count: Int) -> [UInt8] { Self.u16(count) + body }

    static func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
}
