import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// The release decision end to end in the library: keys imported and created, released to RSA and EC target keys
/// of a token, the answer checked and unwrapped the way an enclave does it.
@Suite("KeyBroker: release")
struct KeyReleaseTests {
    static let broker = try! KeyBroker(
        keyring: BrokerKeyring.generate(
            name: "https://broker.example",
            authorities: KeyBroker.pins(of: [TestAuthority.shared.brokerAuthority])
        ),
        authorities: [TestAuthority.shared.brokerAuthority],
        name: "https://broker.example"
    )
    static let aesKey: [UInt8] = (0..<32).map { UInt8($0 * 7 & 0xFF) }

    /// An exportable AES key with `aesKey`'s bytes, imported through the import key.
    static func importedKey(policy: [UInt8]? = TestKeys.policy(), exportable: Bool = true) throws -> StoredKey {
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(broker.importKeyJWK.utf8))
        guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
            throw KeyBrokerError("test", "the import key is not RSA")
        }
        return try broker.importKey(
            BrokerImportKeyRequest(
                name: "data-key",
                version: "v1",
                type: .aes256,
                wrappedKey: [],
                attributes: BrokerKeyAttributes(exportable: exportable, releasePolicy: policy, immutable: false)
            ).wrapping(aesKey, to: importKey, for: broker)
        )
    }

    static var brokerKey: P256.Signing.PublicKey { broker.keyring.signingKey.publicKey }

    @Test func releaseToAnRSATargetUnwrapsToTheImportedKey() throws {
        let target = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let token = try TestAuthority.shared.token(
            TestAuthority.shared.claims(keys: [TestKeys.jwk(try WrapJWK(rsa: target.publicKey, kid: "t1"))])
        )
        let response = Self.broker.release(
            BrokerReleaseRequest(key: try Self.importedKey(), target: token),
            now: Date()
        )
        #expect(response.refusal == nil, "\(String(describing: response.refusal))")
        let answer = try ReleaseAnswer(jws: try #require(response.value), brokerKey: Self.brokerKey)
        #expect(answer.keyHSM.header.enc == "RSA_AES_KEY_WRAP_256")
        #expect(answer.keyHSM.header.kid == "t1")
        #expect(answer.keyID == "https://broker.example/keys/data-key/v1")
        #expect(answer.certificate == Self.broker.keyring.signingCertificate)
        let unwrapped = try RSAAESKeyWrap.unwrap(try #require(answer.keyHSM.ciphertextBytes), with: target)
        #expect(unwrapped == Self.aesKey)
        #expect(response.audit.verified)
        #expect(response.audit.issuer == TestAuthority.shared.url)
        #expect(response.audit.claims["x-ms-sgx-mrsigner"] == TestKeys.signer)
    }

    @Test(arguments: ["P-256", "P-384"])
    func releaseToAnECTargetDecryptsToTheImportedKey(curve: String) throws {
        let p256 = P256.KeyAgreement.PrivateKey()
        let p384 = P384.KeyAgreement.PrivateKey()
        let jwk = curve == "P-256" ? WrapJWK(p256: p256.publicKey) : WrapJWK(p384: p384.publicKey)
        let token = try TestAuthority.shared.token(TestAuthority.shared.claims(keys: [TestKeys.jwk(jwk)]))
        let response = Self.broker.release(
            BrokerReleaseRequest(key: try Self.importedKey(), target: token),
            now: Date()
        )
        let answer = try ReleaseAnswer(jws: try #require(response.value), brokerKey: Self.brokerKey)
        #expect(answer.keyHSM.header.enc == "ECDH-ES+A256KW")
        let jwe = String(decoding: try #require(answer.keyHSM.ciphertextBytes), as: UTF8.self)
        let plaintext =
            curve == "P-256"
            ? try ECDHESJWE.decrypt(jwe, with: p256).plaintext : try ECDHESJWE.decrypt(jwe, with: p384).plaintext
        #expect(plaintext == Self.aesKey)
    }

    @Test(arguments: BrokerKeyType.allCases)
    func createdKeysReleaseAsTheirBytesForm(type: BrokerKeyType) throws {
        let key = try Self.broker.createKey(
            BrokerCreateKeyRequest(
                name: "made",
                version: "1",
                type: type,
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: true)
            )
        )
        #expect((key.publicKey == nil) == (type == .aes256))
        let target = P256.KeyAgreement.PrivateKey()
        let token = try TestAuthority.shared.token(
            TestAuthority.shared.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))])
        )
        let response = Self.broker.release(BrokerReleaseRequest(key: key, target: token), now: Date())
        let answer = try ReleaseAnswer(jws: try #require(response.value), brokerKey: Self.brokerKey)
        let jwe = String(decoding: try #require(answer.keyHSM.ciphertextBytes), as: UTF8.self)
        let bytes = try ECDHESJWE.decrypt(jwe, with: target).plaintext
        switch type {
        case .aes256: #expect(bytes.count == 32)
        case .rsa2048, .rsa3072:
            #expect(try _RSA.Signing.PrivateKey(derRepresentation: bytes).keySizeInBits == type.keySize)
        case .ecP256:
            let jwk = try JSONDecoder().decode(WrapJWK.self, from: Data(try #require(key.publicKey).utf8))
            let raw = Array(try P256.Signing.PrivateKey(derRepresentation: bytes).publicKey.rawRepresentation)
            #expect(Base64URL.encode(raw.prefix(32)) == jwk.x)
        case .ecP384:
            _ = try P384.Signing.PrivateKey(derRepresentation: bytes)
        }
    }

    @Test func aesKeyWrapWithPaddingMatchesRFC5649Vectors() throws {
        // RFC 5649 §6: KEK 5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8.
        let kek = SymmetricKey(data: Hex.decode("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")!)
        let twenty = Hex.decode("c37b7e6492584340bed12207808941155068f738")!
        #expect(
            try AESKeyWrap.wrapWithPadding(twenty, using: kek)
                == Hex.decode("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")!
        )
        let seven = Hex.decode("466f7250617369")!
        #expect(try AESKeyWrap.wrapWithPadding(seven, using: kek) == Hex.decode("afbeb0f07dfbf5419200f2ccb50bb24f")!)
        #expect(try AESKeyWrap.unwrapWithPadding(Hex.decode("afbeb0f07dfbf5419200f2ccb50bb24f")!, using: kek) == seven)
        // RFC 3394 §4.6: 256-bit KEK, 256-bit key data.
        let kek256 = SymmetricKey(data: Hex.decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")!)
        let data = Hex.decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")!
        let expected = Hex.decode("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")!
        #expect(try AESKeyWrap.wrap(data, using: kek256) == expected)
        #expect(try AESKeyWrap.unwrap(expected, using: kek256) == data)
        // Any flipped bit fails the check value.
        var tampered = expected
        tampered[10] ^= 1
        #expect(throws: KeyReleaseFormatError.self) { try AESKeyWrap.unwrap(tampered, using: kek256) }
    }
}
