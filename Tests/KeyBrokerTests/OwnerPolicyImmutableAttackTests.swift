import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing
import _CryptoExtras

/// The broker service refuses to replace the release policy of an owner's key (`KeyOwnedByImporter`), but that check
/// is the host's: the host runs the broker enclave and can call its `BrokerUpdatePolicy` ECALL itself (or rewrite the
/// origin column). The enclave stores every key imported under a release policy immutable, whatever the request
/// said, and the envelope binds the flag: the host can't replace the owner's policy with one naming its own enclave.
@Suite("KeyBroker: an owner's release policy is immutable in the enclave", .serialized)
struct OwnerPolicyImmutableAttackTests {
    /// A policy of the host's choosing (any enclave of the test signer, whatever its security version).
    static let takeover = TestKeys.policy(minimumSVN: 0)
    static let secret = [UInt8](repeating: 0x5A, count: 32)

    /// The owner's import request: AES, exportable under the test policy, mutable as asked.
    static func ownersRequest(_ name: String) -> BrokerImportKeyRequest {
        BrokerImportKeyRequest(
            name: name,
            version: "v1",
            type: .aes256,
            wrappedKey: [],
            attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: false)
        )
    }

    /// The administrator's key with a mutable policy (created in the broker).
    static func administratorsRequest(_ name: String) -> BrokerCreateKeyRequest {
        BrokerCreateKeyRequest(
            name: name,
            version: "v1",
            type: .aes256,
            attributes: BrokerKeyAttributes(exportable: true, releasePolicy: TestKeys.policy(), immutable: false)
        )
    }

    /// The attack through the broker enclave: the owner imports under a mutable policy; the host calls the
    /// `BrokerUpdatePolicy` ECALL directly with a policy of its own, then with the key's flag flipped back to mutable.
    /// Before: the update answered the key re-sealed under the host's policy.
    @Test func theHostsPolicyUpdateECALLOnAnOwnersKeyIsRefused() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let enclave = try await BrokerEnclaveFixture.load(
            try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1),
            on: platform
        )
        defer { Task { await enclave.terminate() } }
        let opened = try await KeyBrokerEnclaveTests.open(enclave, sealed: nil)
        let importKey = try KeyBrokerEnclaveTests.rsaImportKey(opened)
        let owners = try await enclave.call(
            BrokerImportKey.self,
            try Self.ownersRequest("owners-key")
                .wrapping(Self.secret, to: importKey, trusting: [TestAuthority.shared.brokerAuthority])
        )
        #expect(owners.attributes.immutable, "an owner's import is stored immutable")
        #expect(owners.attributes.releasePolicy == TestKeys.policy())
        let takeover = BrokerKeyAttributes(exportable: true, releasePolicy: Self.takeover, immutable: false)
        do {
            let replaced = try await enclave.call(
                BrokerUpdatePolicy.self,
                BrokerUpdatePolicyRequest(key: owners, attributes: takeover)
            )
            Issue.record("the enclave replaced the owner's policy (immutable: \(replaced.attributes.immutable))")
        } catch let error as EnclaveError {
            #expect(error.code == .malformedInput, "\(error)")
            #expect(error.reason.hasPrefix(KeyBrokerError.policyImmutable + ": "), "\(error)")
        }
        // The host flips the stored flag back: the envelope binds it, so the blob no longer opens.
        var flipped = owners
        flipped.attributes.immutable = false
        do {
            _ = try await enclave.call(
                BrokerUpdatePolicy.self,
                BrokerUpdatePolicyRequest(key: flipped, attributes: takeover)
            )
            Issue.record("the enclave updated a key whose immutable flag the host cleared")
        } catch let error as EnclaveError {
            #expect(error.code == .invalidSignature, "\(error)")
            #expect(error.reason.hasPrefix(BrokerRefusal.Code.keyBlobInvalid + ": "), "\(error)")
        }
        // Control: the administrator's own mutable key is still updated through the same ECALL.
        let administrators = try await enclave.call(BrokerCreateKey.self, Self.administratorsRequest("admin-key"))
        #expect(!administrators.attributes.immutable)
        let updated = try await enclave.call(
            BrokerUpdatePolicy.self,
            BrokerUpdatePolicyRequest(key: administrators, attributes: takeover)
        )
        #expect(updated.attributes.releasePolicy == Self.takeover && !updated.attributes.immutable)
    }

    /// The broker value: an owner's import is immutable whether or not it asked, its policy is never updated, and a
    /// release under the owner's policy still works; the administrator's mutable key is updated (and re-pinned).
    @Test func anOwnersImportIsImmutableWhateverTheRequestSaid() throws {
        let broker = try KeyBroker(
            keyring: try BrokerKeyring.generate(name: "https://broker.example"),
            authorities: [TestAuthority.shared.brokerAuthority],
            name: "https://broker.example"
        )
        for asked in [false, true] {
            let key = try AuthorityPinAttackTests.importSecret(into: broker, immutable: asked)
            #expect(key.attributes.immutable, "asked immutable: \(asked)")
            #expect(
                throws: KeyBrokerError(KeyBrokerError.policyImmutable, "the key's release policy is immutable")
            ) {
                _ = try broker.updatePolicy(
                    BrokerUpdatePolicyRequest(
                        key: key,
                        attributes: BrokerKeyAttributes(
                            exportable: true,
                            releasePolicy: Self.takeover,
                            immutable: false
                        )
                    )
                )
            }
            let target = P256.KeyAgreement.PrivateKey()
            let token = try TestAuthority.shared.token(
                TestAuthority.shared.claims(keys: [TestKeys.jwk(WrapJWK(p256: target.publicKey))])
            )
            let released = broker.release(BrokerReleaseRequest(key: key, target: token), now: Date())
            #expect(released.value != nil, "\(String(describing: released.refusal))")
        }
        // An import without a release policy (the administrator's) stays as asked, and takes a policy later.
        let plain = try broker.importKey(
            try BrokerImportKeyRequest(
                name: "admin-import",
                version: "v1",
                type: .aes256,
                wrappedKey: [],
                attributes: BrokerKeyAttributes(exportable: false, releasePolicy: nil, immutable: false)
            ).wrapping(Self.secret, to: try KeyOperationAttackTests.importKey(broker), for: broker)
        )
        #expect(!plain.attributes.immutable)
        let withPolicy = try broker.updatePolicy(
            BrokerUpdatePolicyRequest(
                key: plain,
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: Self.takeover, immutable: false)
            )
        )
        #expect(withPolicy.attributes.releasePolicy == Self.takeover)
        let created = try broker.createKey(Self.administratorsRequest("admin-key"))
        let updated = try broker.updatePolicy(
            BrokerUpdatePolicyRequest(
                key: created,
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: Self.takeover, immutable: false)
            )
        )
        #expect(updated.attributes.releasePolicy == Self.takeover && !updated.attributes.immutable)
    }
}
