import AttestationAPI
import Crypto
import EnclaveCore
import EnclaveKeyRelease
import EnclaveRuntime
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing

/// The enclave side's unwrap (`EnclaveContext.unwrapRelease`, what `releaseKey` runs on the broker's answer)
/// against the broker's own output: it unwraps what is meant for its key, and refuses an answer the host made or
/// changed, one for another key, and one wrapped to another enclave's key.
@Suite("KeyBroker: the enclave's unwrap of a release answer")
struct EnclaveUnwrapTests {
    static func answer(to key: P256.KeyAgreement.PrivateKey) throws -> String {
        let token = try TestAuthority.shared.token(
            TestAuthority.shared.claims(keys: [TestKeys.jwk(WrapJWK(p256: key.publicKey))])
        )
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: token),
            now: Date()
        )
        return try #require(response.value)
    }

    static var brokerKey: P256.Signing.PublicKey { KeyReleaseTests.brokerKey }

    @Test func unwrapsTheBrokersAnswer() throws {
        let key = P256.KeyAgreement.PrivateKey()
        let released = try EnclaveContext.unwrapRelease(
            try Self.answer(to: key),
            name: "data-key",
            version: "v1",
            brokerKey: Self.brokerKey,
            key: key
        )
        #expect(released.bytes == KeyReleaseTests.aesKey)
        #expect(released.keyType == "oct-HSM")
        #expect(released.symmetricKey != nil)
        let latest = try EnclaveContext.unwrapRelease(
            try Self.answer(to: key),
            name: "data-key",
            version: nil,
            brokerKey: Self.brokerKey,
            key: key
        )
        #expect(latest.keyID.hasSuffix("/keys/data-key/v1"))
    }

    @Test func refusesAnAnswerTheBrokerDidNotSign() throws {
        let key = P256.KeyAgreement.PrivateKey()
        let genuine = try Self.answer(to: key)
        // The host signs an answer of its own (its key wrapped to the enclave's public key) with another key.
        let impostor = try KeyBroker(
            keyring: BrokerKeyring.generate(name: "https://broker.example"),
            authorities: [TestAuthority.shared.brokerAuthority],
            name: "https://broker.example"
        )
        let token = try TestAuthority.shared.token(
            TestAuthority.shared.claims(keys: [TestKeys.jwk(WrapJWK(p256: key.publicKey))])
        )
        let hostKey = try impostor.createKey(
            BrokerCreateKeyRequest(
                name: "data-key",
                version: "v1",
                type: .aes256,
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: false)
            )
        )
        let forged = try #require(
            impostor.release(BrokerReleaseRequest(key: hostKey, target: token), now: Date()).value
        )
        for answer in [forged, Self.flipLastSignatureCharacter(genuine)] {
            do {
                _ = try EnclaveContext.unwrapRelease(
                    answer,
                    name: "data-key",
                    version: "v1",
                    brokerKey: Self.brokerKey,
                    key: key
                )
                Issue.record("an answer the broker did not sign was accepted")
            } catch {
                #expect(error.code == .invalidSignature, "\(error)")
            }
        }
    }

    @Test func refusesAnAnswerForAnotherKeyOrAnotherEnclave() throws {
        let key = P256.KeyAgreement.PrivateKey()
        let answer = try Self.answer(to: key)
        #expect(throws: EnclaveError.self) {
            try EnclaveContext.unwrapRelease(answer, name: "other", version: nil, brokerKey: Self.brokerKey, key: key)
        }
        #expect(throws: EnclaveError.self) {
            try EnclaveContext.unwrapRelease(
                answer,
                name: "data-key",
                version: "v2",
                brokerKey: Self.brokerKey,
                key: key
            )
        }
        #expect(throws: EnclaveError.self) {
            try EnclaveContext.unwrapRelease(
                answer,
                name: "data-key",
                version: "v1",
                brokerKey: Self.brokerKey,
                key: P256.KeyAgreement.PrivateKey()
            )
        }
    }

    static func flipLastSignatureCharacter(_ jws: String) -> String {
        var characters = Array(jws)
        let index = characters.count - 2
        characters[index] = characters[index] == "A" ? "B" : "A"
        return String(characters)
    }
}
