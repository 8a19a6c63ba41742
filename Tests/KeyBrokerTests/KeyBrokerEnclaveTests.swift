import AttestationAPI
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import X509
import _CryptoExtras

/// The broker enclave itself: its keyring sealed under the signer policy (an upgrade opens it, a downgrade or
/// another signer can't), its evidence binding its keys, and the ECALLs end to end.
@Suite("KeyBroker: the broker enclave", .serialized)
struct KeyBrokerEnclaveTests {
    static let name = "https://broker.test"

    /// The RSA import key `opened` offers (its JWK decoded); records an issue and throws when it is not RSA.
    static func rsaImportKey(_ opened: BrokerOpenResponse) throws -> _RSA.Encryption.PublicKey {
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(opened.importKey.utf8))
        guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
            Issue.record("the import key is not RSA")
            throw EnclaveError.malformedInput("the broker's import key is not RSA")
        }
        return importKey
    }

    static func open(_ enclave: Enclave, sealed: [UInt8]?) async throws -> BrokerOpenResponse {
        try await enclave.call(
            BrokerOpen.self,
            BrokerOpenRequest(
                sealedKeyring: sealed,
                authorities: [TestAuthority.shared.brokerAuthority],
                brokerName: name
            )
        )
    }

    @Test func keyringOpensOnUpgradeButNotOnDowngradeOrForAnotherSigner() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let signer = P256.Signing.PrivateKey()
        let v2 = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: signer, securityVersion: 2),
            on: platform
        )
        let first = try await Self.open(v2, sealed: nil)
        await v2.terminate()
        let blob = try #require(first.newSealedKeyring)

        let v1 = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: signer, securityVersion: 1),
            on: platform
        )
        await #expect(throws: EnclaveError.self) { _ = try await Self.open(v1, sealed: blob) }
        await v1.terminate()

        let other = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 3),
            on: platform
        )
        await #expect(throws: EnclaveError.self) { _ = try await Self.open(other, sealed: blob) }
        await other.terminate()

        let v3 = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: signer, securityVersion: 3),
            on: platform
        )
        let upgraded = try await Self.open(v3, sealed: blob)
        await v3.terminate()
        #expect(upgraded.newSealedKeyring == nil)
        #expect(upgraded.signingCertificate == first.signingCertificate)
        #expect(upgraded.importKey == first.importKey)
    }

    @Test func evidenceBindsTheSigningCertificateAndImportKey() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let enclave = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1),
            on: platform
        )
        let opened = try await Self.open(enclave, sealed: nil)
        await enclave.terminate()
        let token = try await BrokerEnclaveFixture.withService(trusting: platform, issuer: "http://attest.test") {
            try await BrokerEnclaveFixture.token($0, evidence: opened.evidence, runtimeData: opened.runtimeData)
        }
        let claims = try #require(ReleaseTokenVerifier.unverifiedClaims(token))
        guard case .object(let runtime)? = claims["x-ms-runtime"], case .array(let keys)? = runtime["keys"] else {
            Issue.record("the token has no x-ms-runtime.keys")
            return
        }
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(opened.importKey.utf8))
        #expect(keys.contains { $0.objectMember("n")?.stringValue == importJWK.n })
        let x5c = keys.compactMap { $0.objectMember("x5c") }.first
        #expect(x5c == .array([.string(Data(opened.signingCertificate).base64EncodedString())]))
        #expect(runtime["broker"] == .string(Self.name))
    }

    @Test func createImportReleaseAndUnwrapThroughTheEnclave() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let enclave = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1),
            on: platform
        )
        defer { Task { await enclave.terminate() } }
        let opened = try await Self.open(enclave, sealed: nil)
        let importKey = try Self.rsaImportKey(opened)
        let secret = [UInt8](repeating: 0x42, count: 32)
        let key = try await enclave.call(
            BrokerImportKey.self,
            BrokerImportKeyRequest(
                name: "owner-key",
                version: "1",
                type: .aes256,
                wrappedKey: [],
                // The owner allows the administrator's unwrap (under a policy, the defaults leave it out).
                keyOperations: ["unwrapKey", "wrapKey"],
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: false)
            ).wrapping(secret, to: importKey, trusting: [TestAuthority.shared.brokerAuthority])
        )
        #expect(!key.blob.isEmpty && !Self.contains(key.blob, secret))
        // A data key wrapped with it (A256KW) unwraps in the enclave.
        let dataKey = [UInt8](repeating: 7, count: 32)
        let wrapped = try await enclave.call(
            BrokerWrap.self,
            BrokerWrapRequest(key: key, algorithm: "A256KW", plaintext: dataKey)
        )
        #expect(try AESKeyWrap.unwrap(wrapped, using: SymmetricKey(data: secret)) == dataKey)
        let unwrapped = try await enclave.call(
            BrokerUnwrap.self,
            BrokerUnwrapRequest(key: key, algorithm: "A256KW", ciphertext: wrapped)
        )
        #expect(unwrapped == dataKey)
        // Released to a P-256 target of a token.
        let target = P256.KeyAgreement.PrivateKey()
        let token = try TestAuthority.shared.token(
            TestAuthority.shared.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))])
        )
        let response = try await enclave.call(BrokerRelease.self, BrokerReleaseRequest(key: key, target: token))
        let brokerKey = try #require(
            P256.Signing.PublicKey(try Certificate(derEncoded: opened.signingCertificate).publicKey)
        )
        let answer = try ReleaseAnswer(jws: try #require(response.value), brokerKey: brokerKey)
        let jwe = String(decoding: try #require(answer.keyHSM.ciphertextBytes), as: UTF8.self)
        #expect(try ECDHESJWE.decrypt(jwe, with: target).plaintext == secret)
        // A refused release is an answer with its code, not an error.
        let refused = try await enclave.call(
            BrokerRelease.self,
            BrokerReleaseRequest(key: key, target: token, nonce: "not-in-the-token")
        )
        #expect(refused.value == nil && refused.refusal?.code == BrokerRefusal.Code.nonceMismatch)
        // Management errors cross the boundary with the broker's code in the message.
        // (An owner's import is stored immutable: the host clears the flag.)
        #expect(key.attributes.immutable)
        var tampered = key
        tampered.attributes.immutable = false
        do {
            _ = try await enclave.call(
                BrokerUpdatePolicy.self,
                BrokerUpdatePolicyRequest(key: tampered, attributes: key.attributes)
            )
            Issue.record("a tampered key was updated")
        } catch let error as EnclaveError {
            #expect(
                error.code == .invalidSignature && "\(error)".contains(BrokerRefusal.Code.keyBlobInvalid),
                "\(error)"
            )
        }
    }

    /// Whether `bytes` holds `needle` anywhere.
    static func contains(_ bytes: [UInt8], _ needle: [UInt8]) -> Bool {
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<$0 + needle.count]) == needle }
    }
}

extension TokenValue {
    /// A member of an object value.
    func objectMember(_ name: String) -> TokenValue? {
        if case .object(let members) = self { return members[name] }
        return nil
    }
}
