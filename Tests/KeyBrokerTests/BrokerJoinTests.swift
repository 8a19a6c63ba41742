import AttestationAPI
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing

/// Replicas (issue 12 item 6): a newcomer broker enclave on another simulated platform gets the keyring only by an
/// attested join — its evidence, attested by a trusted service into a token, must show the granter's signer and
/// product, a security version at least the granter's, no debug (unless the granter is), and bind the key offered.
@Suite("KeyBroker: replica join across two simulated platforms", .serialized)
struct BrokerJoinTests {
    static let issuer = "http://attest.join.test"

    /// A granter opened on its own platform, trusting a service that trusts the newcomer's platform.
    struct Setup {
        let granterPlatform: SimulatedPlatform
        let newcomerPlatform: SimulatedPlatform
        let granterSigner: P256.Signing.PrivateKey
        let granter: Enclave
        let granterOpen: BrokerOpenResponse
    }

    static func withSetup(
        granterSVN: UInt16 = 2,
        _ body: (Setup, AttestationServiceCore) async throws -> Void
    )
        async throws
    {
        let granterPlatform = try BrokerEnclaveFixture.platform()
        let newcomerPlatform = try BrokerEnclaveFixture.platform()
        let signer = P256.Signing.PrivateKey()
        try await BrokerEnclaveFixture.withService(trusting: newcomerPlatform, issuer: issuer) { service in
            let granter = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: signer, securityVersion: granterSVN),
                on: granterPlatform
            )
            do {
                let opened = try await granter.call(
                    BrokerOpen.self,
                    BrokerOpenRequest(
                        sealedKeyring: nil,
                        authorities: [try BrokerEnclaveFixture.authority(service, url: issuer)],
                        brokerName: "https://broker.test"
                    )
                )
                let setup = Setup(
                    granterPlatform: granterPlatform,
                    newcomerPlatform: newcomerPlatform,
                    granterSigner: signer,
                    granter: granter,
                    granterOpen: opened
                )
                try await body(setup, service)
            } catch {
                await granter.terminate()
                throw error
            }
            await granter.terminate()
        }
    }

    /// The newcomer's offer and the service's token over it.
    static func offer(_ newcomer: Enclave, service: AttestationServiceCore) async throws -> (BrokerJoinOffer, String) {
        let offer = try await newcomer.call(BrokerJoinRequest.self, Empty())
        let token = try await BrokerEnclaveFixture.token(
            service,
            evidence: offer.evidence,
            runtimeData: offer.runtimeData
        )
        return (offer, token)
    }

    static func expectRefused(
        _ setup: Setup,
        _ request: BrokerJoinGrantRequest,
        mentioning text: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            _ = try await setup.granter.call(BrokerJoinGrant.self, request)
            Issue.record("the join was granted", sourceLocation: sourceLocation)
        } catch let error as EnclaveError {
            #expect(error.code == .invalidSignature, "\(error)", sourceLocation: sourceLocation)
            #expect("\(error)".contains(BrokerRefusal.Code.joinRefused), "\(error)", sourceLocation: sourceLocation)
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func anUpgradedNewcomerOnAnotherPlatformJoinsAndServesTheSameKeys() async throws {
        try await Self.withSetup { setup, service in
            // A key made on the granter.
            let key = try await setup.granter.call(
                BrokerCreateKey.self,
                BrokerCreateKeyRequest(
                    name: "shared",
                    version: "1",
                    type: .aes256,
                    attributes: BrokerKeyAttributes(exportable: false, releasePolicy: nil, immutable: false)
                )
            )
            let dataKey = [UInt8](repeating: 9, count: 32)
            let wrapped = try await setup.granter.call(
                BrokerWrap.self,
                BrokerWrapRequest(key: key, algorithm: "A256KW", plaintext: dataKey)
            )
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 3),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            let grant = try await setup.granter.call(
                BrokerJoinGrant.self,
                BrokerJoinGrantRequest(token: token, key: offer.key)
            )
            let sealed = try await newcomer.call(BrokerJoinComplete.self, BrokerJoinCompleteRequest(grant: grant.grant))
            let opened = try await newcomer.call(
                BrokerOpen.self,
                BrokerOpenRequest(sealedKeyring: sealed, authorities: [], brokerName: "https://broker.test")
            )
            #expect(opened.newSealedKeyring == nil)
            #expect(opened.signingCertificate == setup.granterOpen.signingCertificate)
            // The newcomer opens the granter's key blob: the same master key.
            let unwrapped = try await newcomer.call(
                BrokerUnwrap.self,
                BrokerUnwrapRequest(key: key, algorithm: "A256KW", ciphertext: wrapped)
            )
            #expect(unwrapped == dataKey)
            // The grant is for this enclave's pending key only: a second completion has no key.
            await #expect(throws: EnclaveError.self) {
                _ = try await newcomer.call(BrokerJoinComplete.self, BrokerJoinCompleteRequest(grant: grant.grant))
            }
            await newcomer.terminate()
        }
    }

    @Test func anotherSignerIsRefused() async throws {
        try await Self.withSetup { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 2),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            await newcomer.terminate()
            await Self.expectRefused(setup, BrokerJoinGrantRequest(token: token, key: offer.key), mentioning: "signer")
        }
    }

    @Test func anotherProductIsRefused() async throws {
        try await Self.withSetup { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2, productID: 2),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            await newcomer.terminate()
            await Self.expectRefused(setup, BrokerJoinGrantRequest(token: token, key: offer.key), mentioning: "product")
        }
    }

    @Test func aLowerSecurityVersionIsRefused() async throws {
        try await Self.withSetup(granterSVN: 3) { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            await newcomer.terminate()
            await Self.expectRefused(
                setup,
                BrokerJoinGrantRequest(token: token, key: offer.key),
                mentioning: "security version"
            )
        }
    }

    @Test func aDebugNewcomerIsRefusedByANonDebugGranter() async throws {
        try await Self.withSetup { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2, debug: true),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            await newcomer.terminate()
            await Self.expectRefused(setup, BrokerJoinGrantRequest(token: token, key: offer.key), mentioning: "debug")
        }
    }

    @Test func evidenceNotBindingTheOfferedKeyIsRefused() async throws {
        try await Self.withSetup { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2),
                on: setup.newcomerPlatform
            )
            let (_, token) = try await Self.offer(newcomer, service: service)
            await newcomer.terminate()
            // The host swaps in a key of its own beside a genuine token.
            let hostKey = WrapJWK(p256: P256.KeyAgreement.PrivateKey().publicKey)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let swapped = String(decoding: try encoder.encode(hostKey), as: UTF8.self)
            await Self.expectRefused(setup, BrokerJoinGrantRequest(token: token, key: swapped), mentioning: "bind")
        }
    }
}
