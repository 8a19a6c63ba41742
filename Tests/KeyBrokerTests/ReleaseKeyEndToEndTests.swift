import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBrokerInterface
import KeyReleaseFormats
import TestInterface
import TestSupport
import Testing
import _CryptoExtras

/// `releaseKey` in an ordinary enclave (the test enclave) against the real broker enclave, with the host's OCALL
/// handlers carrying the evidence to an in-process attestation service and the token to the broker: the enclave
/// gets the owner's key (the test sees only its SHA-256); an enclave of another signer is refused by the policy.
@Suite("KeyBroker: releaseKey from an enclave to the broker enclave", .serialized)
struct ReleaseKeyEndToEndTests {
    @Test func theRightEnclaveGetsTheKeyAndAnotherSignerIsRefused() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let issuer = "http://attest.release.test"
        try await BrokerEnclaveFixture.withService(trusting: platform, issuer: issuer) { service in
            let broker = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1),
                on: platform
            )
            do {
                let opened = try await broker.call(
                    BrokerOpen.self,
                    BrokerOpenRequest(
                        sealedKeyring: nil,
                        authorities: [try BrokerEnclaveFixture.authority(service, url: issuer)],
                        brokerName: "https://broker.test"
                    )
                )
                let importJWK = try JSONDecoder().decode(WrapJWK.self, from: Data(opened.importKey.utf8))
                guard case .rsa(let importKey) = try importJWK.wrapTarget() else {
                    Issue.record("the import key is not RSA")
                    await broker.terminate()
                    return
                }
                // The data owner's key, released only to enclaves signed by `workerSigner` at SVN ≥ 1.
                let workerSigner = P256.Signing.PrivateKey()
                let worker = try Fixtures.sign(
                    config: EnclaveConfig(productID: 1, securityVersion: 1),
                    key: workerSigner
                )
                let policy = """
                    {"version": "1.0.0", "anyOf": [{"authority": "\(issuer)", "allOf": [
                      {"claim": "x-ms-sgx-mrsigner", "equals": "\(worker.identity.signerID.hex)"},
                      {"claim": "x-ms-sgx-svn", "greaterOrEquals": 1}]}]}
                    """
                let secret = (0..<32).map { UInt8($0) }
                let stored = try await broker.call(
                    BrokerImportKey.self,
                    BrokerImportKeyRequest(
                        name: "owner",
                        version: "1",
                        type: .aes256,
                        wrappedKey: [],
                        attributes: BrokerKeyAttributes(
                            exportable: true,
                            releasePolicy: Array(policy.utf8),
                            immutable: true
                        )
                    ).wrapping(
                        secret,
                        to: importKey,
                        trusting: [try BrokerEnclaveFixture.authority(service, url: issuer)]
                    )
                )
                let certificate = try X509Bridge.publicKeyRaw(certificateDER: opened.signingCertificate)
                let request = ReleaseKeyRequest(name: "owner", version: "1", brokerKey: certificate)

                // The host: carries evidence to the service and the token to the broker, opaque bytes only.
                func options(_ signed: Fixtures.Signed) -> Enclave.Options {
                    var options = Enclave.Options()
                    options.platform = platform
                    options.evidenceSource = .simulated
                    options.signaturePath = signed.signature
                    options.ocalls.register(KeyReleaseAttest.self) { attest in
                        try await BrokerEnclaveFixture.token(
                            service,
                            evidence: attest.evidence,
                            runtimeData: attest.runtimeData
                        )
                    }
                    options.ocalls.register(KeyReleaseFetch.self) { fetch in
                        let response = try await broker.call(
                            BrokerRelease.self,
                            BrokerReleaseRequest(key: stored, target: fetch.token, nonce: fetch.nonce)
                        )
                        guard let value = response.value else {
                            throw EnclaveError.invalidSignature(response.refusal?.description ?? "refused")
                        }
                        return value
                    }
                    return options
                }

                let right = try await Enclave.load(path: worker.image, options: options(worker))
                let result = try await right.call(ReleaseKeyProbe.self, request)
                await right.terminate()
                #expect(result.digest == Array(SHA256.hash(data: secret)))
                #expect(result.keyID == "https://broker.test/keys/owner/1")

                let other = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1))
                let wrong = try await Enclave.load(path: other.image, options: options(other))
                do {
                    _ = try await wrong.call(ReleaseKeyProbe.self, request)
                    Issue.record("an enclave of another signer got the key")
                } catch {
                    #expect("\(error)".contains(BrokerRefusal.Code.policyNotSatisfied), "\(error)")
                }
                await wrong.terminate()
            } catch {
                await broker.terminate()
                throw error
            }
            await broker.terminate()
        }
    }
}
