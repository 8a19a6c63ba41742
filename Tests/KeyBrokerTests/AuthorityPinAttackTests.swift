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

/// The broker's host (or operator) chooses the authorities and certificates the broker enclave is opened with. A
/// host that opens the enclave trusting a certificate of its own for the authority URL an owner's policy names can
/// mint a token stating the owner's signer over a key pair of its own: each key must be released only under the
/// signing certificates pinned in its envelope when it was made.
@Suite("KeyBroker: a host-forged authority certificate", .serialized)
struct AuthorityPinAttackTests {
    typealias Code = BrokerRefusal.Code
    static let secret: [UInt8] = (0..<32).map { UInt8(($0 * 13 + 5) & 0xFF) }

    /// A token of `authority` (owner's signer, SVN 3) over `target`'s public key.
    static func token(_ authority: TestAuthority, target: P256.KeyAgreement.PrivateKey) throws -> String {
        try authority.token(authority.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))]))
    }

    /// `secret` imported into `broker` as an exportable AES key under the policy naming `TestAuthority.shared`.
    static func importSecret(into broker: KeyBroker, immutable: Bool) throws -> StoredKey {
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(broker.importKeyJWK.utf8))
        guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
            throw KeyBrokerError("test", "the import key is not RSA")
        }
        return try broker.importKey(
            BrokerImportKeyRequest(
                name: "owner-key",
                version: "v1",
                type: .aes256,
                wrappedKey: [],
                attributes: BrokerKeyAttributes(
                    exportable: true,
                    releasePolicy: TestKeys.policy(),
                    immutable: immutable
                )
            ).wrapping(secret, to: importKey, for: broker)
        )
    }

    /// The attack on the broker value: the same keyring opened a second time by a host that pins a forged certificate
    /// for the authority's URL. Before the fix the key was released to the host's key pair.
    @Test func aForgedCertificateForThePolicysAuthorityReleasesNothing() throws {
        let keyring = try BrokerKeyring.generate(name: "https://broker.example")
        let honest = try KeyBroker(
            keyring: keyring,
            authorities: [TestAuthority.shared.brokerAuthority],
            name: "https://broker.example"
        )
        let key = try Self.importSecret(into: honest, immutable: true)
        // The host restarts the broker enclave trusting its own certificate for the same URL.
        let forged = try TestAuthority(url: TestAuthority.shared.url)
        let hostile = try KeyBroker(
            keyring: keyring,
            authorities: [forged.brokerAuthority],
            name: "https://broker.example"
        )
        let hostKey = P256.KeyAgreement.PrivateKey()
        let response = hostile.release(
            BrokerReleaseRequest(key: key, target: try Self.token(forged, target: hostKey)),
            now: Date()
        )
        if let value = response.value {
            let answer = try ReleaseAnswer(jws: value, brokerKey: keyring.signingKey.publicKey)
            let jwe = String(decoding: try #require(answer.keyHSM.ciphertextBytes), as: UTF8.self)
            let leaked = try ECDHESJWE.decrypt(jwe, with: hostKey).plaintext
            Issue.record("the host got the owner's key (\(leaked == Self.secret ? "the very bytes" : "a key"))")
        }
        #expect(response.refusal?.code == Code.authorityCertificateNotPinned, "\(String(describing: response.refusal))")
        // The refusal is audited with the token's (verified) claims.
        #expect(response.audit.issuer == TestAuthority.shared.url)
        #expect(response.audit.claims["x-ms-sgx-mrsigner"] == TestKeys.signer)
        // The honest broker still releases to a token of the genuine authority.
        let enclaveKey = P256.KeyAgreement.PrivateKey()
        let genuine = honest.release(
            BrokerReleaseRequest(key: key, target: try Self.token(TestAuthority.shared, target: enclaveKey)),
            now: Date()
        )
        #expect(genuine.value != nil, "\(String(describing: genuine.refusal))")
    }

    /// The same attack on the real broker enclave: the host loads a second instance with the sealed keyring and a
    /// forged certificate for the authority URL.
    @Test func theBrokerEnclaveOpenedWithAForgedCertificateReleasesNothing() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let signed = try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1)
        let first = try await BrokerEnclaveFixture.load(signed, on: platform)
        let opened = try await first.call(
            BrokerOpen.self,
            BrokerOpenRequest(
                sealedKeyring: nil,
                authorities: [TestAuthority.shared.brokerAuthority],
                brokerName: "https://broker.test"
            )
        )
        let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(opened.importKey.utf8))
        guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
            Issue.record("the import key is not RSA")
            await first.terminate()
            return
        }
        let key = try await first.call(
            BrokerImportKey.self,
            BrokerImportKeyRequest(
                name: "owner-key",
                version: "1",
                type: .aes256,
                wrappedKey: [],
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: true)
            ).wrapping(Self.secret, to: importKey, trusting: [TestAuthority.shared.brokerAuthority])
        )
        await first.terminate()
        let sealed = try #require(opened.newSealedKeyring)

        let forged = try TestAuthority(url: TestAuthority.shared.url)
        let second = try await BrokerEnclaveFixture.load(signed, on: platform)
        _ = try await second.call(
            BrokerOpen.self,
            BrokerOpenRequest(
                sealedKeyring: sealed,
                authorities: [forged.brokerAuthority],
                brokerName: "https://broker.test"
            )
        )
        let hostKey = P256.KeyAgreement.PrivateKey()
        let response = try await second.call(
            BrokerRelease.self,
            BrokerReleaseRequest(key: key, target: try Self.token(forged, target: hostKey))
        )
        await second.terminate()
        let released = response.value != nil
        #expect(!released, "the broker enclave released the owner's key to the host's key pair")
        #expect(response.refusal?.code == Code.authorityCertificateNotPinned, "\(String(describing: response.refusal))")
    }

    /// A replica join hands over the whole keyring. A host that reopens a running replica trusting a forged
    /// certificate for the authority URL mints a newcomer token (the broker's own signer and product) over a key of its
    /// own: the grant must verify the token under the certificates pinned in the keyring when it was made. (Before:
    /// the keyring went to the host's key, which then opens every stored blob.)
    @Test func aForgedNewcomerTokenGetsNoKeyring() throws {
        let keyring = try BrokerKeyring.generate(
            name: "https://broker.example",
            authorities: KeyBroker.pins(of: [TestAuthority.shared.brokerAuthority])
        )
        let forged = try TestAuthority(url: TestAuthority.shared.url)
        let both = BrokerAuthority(
            url: TestAuthority.shared.url,
            certificates: [TestAuthority.shared.certificateDER, forged.certificateDER]
        )
        let hostile = try KeyBroker(keyring: keyring, authorities: [both], name: "https://broker.example")
        let hostKey = P256.KeyAgreement.PrivateKey()
        let wrap = WrapJWK(p256: hostKey.publicKey, kid: "join")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let jwk = String(decoding: try encoder.encode(wrap), as: UTF8.self)
        let granter = KeyBroker.ReplicaIdentity(
            signerID: TestKeys.signer,
            productID: 1,
            securityVersion: 3,
            debug: false
        )
        let claims = forged.claims(keys: [TestKeys.jwk(wrap)])
        let refused = #expect(throws: KeyBrokerError.self) {
            _ = try hostile.grantJoin(
                BrokerJoinGrantRequest(token: try forged.token(claims), key: jwk),
                granter: granter,
                now: Date()
            )
        }
        #expect(refused?.code == Code.joinRefused && refused?.reason.contains("keyring was not made") == true)
        // A newcomer attested by the genuine authority's certificate is granted (control).
        let granted = try hostile.grantJoin(
            BrokerJoinGrantRequest(token: try TestAuthority.shared.token(claims), key: jwk),
            granter: granter,
            now: Date()
        )
        #expect(!granted.grant.isEmpty)
    }
}
