import AttestationAPI
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import TestSupport
import Testing

/// Replicas (issue 12 item 6): a newcomer broker enclave on another simulated platform gets the keyring only by an
/// attested join — its evidence, attested by a trusted service into a token, must show the granter's signer and
/// product, a security version at least the granter's, no debug (unless the granter is), and bind the key offered;
/// the granter's, checked by the newcomer, a security version at least the newcomer's (so both are at one version).
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

    /// Another simulated platform (its own root secret: it can't unseal the first one's blobs) whose quotes chain
    /// to the same simulated root as `platform`'s, as two real CPUs chain to one vendor root: one attestation service
    /// then attests both the granter and the newcomer.
    static func platform(sharingRootWith platform: SimulatedPlatform) throws -> SimulatedPlatform {
        _ = try platform.rootCertificatePEM()
        let directory = try Fixtures.temporaryDirectory() + "/platform"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: platform.directory + "/pki", toPath: directory + "/pki")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory + "/pki")
        let other = try SimulatedPlatform.open(directory: directory)
        #expect(try other.rootCertificatePEM() == platform.rootCertificatePEM())
        return other
    }

    static func withSetup(
        granterSVN: UInt16 = 2,
        granterDebug: Bool = false,
        _ body: (Setup, AttestationServiceCore) async throws -> Void
    )
        async throws
    {
        let granterPlatform = try BrokerEnclaveFixture.platform()
        let newcomerPlatform = try Self.platform(sharingRootWith: granterPlatform)
        let signer = P256.Signing.PrivateKey()
        try await BrokerEnclaveFixture.withService(trusting: newcomerPlatform, issuer: issuer) { service in
            let granter = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: signer, securityVersion: granterSVN, debug: granterDebug),
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

    /// The newcomer's completion: the grant, the token of the granter enclave's evidence, the service pinned.
    static func completion(
        _ grant: BrokerJoinGrantResponse,
        service: AttestationServiceCore
    ) async throws -> BrokerJoinCompleteRequest {
        let evidence = try #require(grant.evidence, "the granter enclave gave no evidence with its grant")
        let token = try await BrokerEnclaveFixture.token(service, evidence: evidence, runtimeData: grant.runtimeData)
        return BrokerJoinCompleteRequest(
            grant: grant.grant,
            granterToken: token,
            authorities: [try BrokerEnclaveFixture.authority(service, url: issuer)]
        )
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

    @Test func aNewcomerOnAnotherPlatformJoinsAndServesTheSameKeys() async throws {
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
            // The granter's security version (2): a newcomer takes a keyring only from one at least its own.
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            let grant = try await setup.granter.call(
                BrokerJoinGrant.self,
                BrokerJoinGrantRequest(token: token, key: offer.key)
            )
            let completion = try await Self.completion(grant, service: service)
            let sealed = try await newcomer.call(BrokerJoinComplete.self, completion)
            // The joined keyring opens only while the certificate that signed the granter's token is trusted.
            await #expect {
                _ = try await newcomer.call(
                    BrokerOpen.self,
                    BrokerOpenRequest(sealedKeyring: sealed, authorities: [], brokerName: "https://broker.test")
                )
            } throws: { error in
                "\(error)".contains("KeyringAuthorityNotTrusted")
            }
            let opened = try await newcomer.call(
                BrokerOpen.self,
                BrokerOpenRequest(
                    sealedKeyring: sealed,
                    authorities: completion.authorities,
                    brokerName: "https://broker.test"
                )
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
                _ = try await newcomer.call(BrokerJoinComplete.self, completion)
            }
            await newcomer.terminate()
        }
    }

    /// Review 6, finding B: an upgraded newcomer (security version 3) refuses the keyring of a granter at 2, which
    /// grants (3 ≥ 2): an old, flawed build of the same signer and product could grant a keyring its attacker knows.
    /// The upgrade path instead: the new build runs on the granter's own platform, opens the keyring sealed at 2 (the
    /// signer policy admits a higher version) and grants it to the upgraded newcomer.
    @Test func anUpgradedNewcomerRefusesAnOlderGranterAndJoinsAnUpgradedOne() async throws {
        try await Self.withSetup(granterSVN: 2) { setup, service in
            let signed = try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 3)
            let newcomer = try await BrokerEnclaveFixture.load(signed, on: setup.newcomerPlatform)
            let upgraded = try await BrokerEnclaveFixture.load(signed, on: setup.granterPlatform)
            do {
                let (offer, token) = try await Self.offer(newcomer, service: service)
                let grant = try await setup.granter.call(
                    BrokerJoinGrant.self,
                    BrokerJoinGrantRequest(token: token, key: offer.key)
                )
                do {
                    _ = try await newcomer.call(
                        BrokerJoinComplete.self,
                        try await Self.completion(grant, service: service)
                    )
                    Issue.record("the upgraded newcomer took the keyring of a granter at a lower security version")
                } catch let error as EnclaveError {
                    #expect(error.code == .invalidSignature, "\(error)")
                    #expect("\(error)".contains(BrokerRefusal.Code.joinRefused + ": granter: "), "\(error)")
                    #expect("\(error)".contains("security version (2) is lower than this enclave's (3)"), "\(error)")
                }
                // The granter's platform upgraded in place: version 3 opens the keyring version 2 sealed, and grants.
                let authorities = [try BrokerEnclaveFixture.authority(service, url: Self.issuer)]
                let reopened = try await upgraded.call(
                    BrokerOpen.self,
                    BrokerOpenRequest(
                        sealedKeyring: try #require(setup.granterOpen.newSealedKeyring as [UInt8]?),
                        authorities: authorities,
                        brokerName: "https://broker.test"
                    )
                )
                #expect(reopened.signingCertificate == setup.granterOpen.signingCertificate)
                let (again, againToken) = try await Self.offer(newcomer, service: service)
                let upgradedGrant = try await upgraded.call(
                    BrokerJoinGrant.self,
                    BrokerJoinGrantRequest(token: againToken, key: again.key)
                )
                let sealed = try await newcomer.call(
                    BrokerJoinComplete.self,
                    try await Self.completion(upgradedGrant, service: service)
                )
                let opened = try await newcomer.call(
                    BrokerOpen.self,
                    BrokerOpenRequest(
                        sealedKeyring: sealed,
                        authorities: authorities,
                        brokerName: "https://broker.test"
                    )
                )
                #expect(opened.importKey == setup.granterOpen.importKey)
            } catch {
                await newcomer.terminate()
                await upgraded.terminate()
                throw error
            }
            await newcomer.terminate()
            await upgraded.terminate()
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

    @Test func aGrantFromADebugGranterIsRefusedByTheNewcomer() async throws {
        try await Self.withSetup(granterDebug: true) { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2),
                on: setup.newcomerPlatform
            )
            let (offer, token) = try await Self.offer(newcomer, service: service)
            // The debug granter grants (the newcomer is not debug), but its keyring may be known outside it.
            let grant = try await setup.granter.call(
                BrokerJoinGrant.self,
                BrokerJoinGrantRequest(token: token, key: offer.key)
            )
            let completion = try await Self.completion(grant, service: service)
            do {
                _ = try await newcomer.call(BrokerJoinComplete.self, completion)
                Issue.record("the newcomer took a debug granter's keyring")
            } catch let error as EnclaveError {
                #expect(error.code == .invalidSignature, "\(error)")
                #expect("\(error)".contains(BrokerRefusal.Code.joinRefused + ": granter: a debug enclave"), "\(error)")
            }
            await newcomer.terminate()
        }
    }

    /// The newcomer's host answers the join itself (the attack-review HOLE): with the newcomer's own token, no
    /// token, or a keyring it made beside a genuine granter's token for this very newcomer. Each is refused by the
    /// newcomer enclave, and a refused completion spends the pending key.
    @Test func aGrantTheHostMadeOrWithoutAGranterTokenIsRefused() async throws {
        try await Self.withSetup { setup, service in
            let newcomer = try await BrokerEnclaveFixture.load(
                try BrokerEnclaveFixture.sign(key: setup.granterSigner, securityVersion: 2),
                on: setup.newcomerPlatform
            )
            let authority = try BrokerEnclaveFixture.authority(service, url: Self.issuer)
            let fake = try BrokerKeyring.generate(name: "https://broker.test")
            enum Forgery: CaseIterable { case ownToken, noToken, hostKeyring }
            for forgery in Forgery.allCases {
                let (offer, token) = try await Self.offer(newcomer, service: service)
                let genuine = try await setup.granter.call(
                    BrokerJoinGrant.self,
                    BrokerJoinGrantRequest(token: token, key: offer.key)
                )
                let genuineCompletion = try await Self.completion(genuine, service: service)
                let request: BrokerJoinCompleteRequest
                let text: String
                switch forgery {
                case .ownToken:
                    request = BrokerJoinCompleteRequest(
                        grant: genuine.grant,
                        granterToken: token,
                        authorities: [authority]
                    )
                    text = "not a join grant"
                case .noToken:
                    request = BrokerJoinCompleteRequest(
                        grant: genuine.grant,
                        granterToken: "",
                        authorities: [authority]
                    )
                    text = "does not verify"
                case .hostKeyring:
                    let offered = try JSONDecoder().decode(WrapJWK.self, from: Data(offer.key.utf8))
                    let forged = try ECDHESJWE.encrypt(
                        fake.bytes,
                        to: try offered.wrapTarget(),
                        contentType: KeyBroker.keyringContentType
                    )
                    request = BrokerJoinCompleteRequest(
                        grant: forged,
                        granterToken: genuineCompletion.granterToken,
                        authorities: [authority]
                    )
                    text = "not the one its evidence binds"
                }
                do {
                    _ = try await newcomer.call(BrokerJoinComplete.self, request)
                    Issue.record("\(forgery): the newcomer took the keyring")
                } catch let error as EnclaveError {
                    #expect(error.code == .invalidSignature, "\(forgery): \(error)")
                    #expect("\(error)".contains(BrokerRefusal.Code.joinRefused + ": granter: "), "\(forgery): \(error)")
                    #expect("\(error)".contains(text), "\(forgery): \(error)")
                }
                // The refused completion spent the pending key: not even the genuine grant opens now.
                do {
                    _ = try await newcomer.call(BrokerJoinComplete.self, genuineCompletion)
                    Issue.record("\(forgery): a second completion was accepted")
                } catch let error as EnclaveError {
                    #expect("\(error)".contains("no join request is pending"), "\(forgery): \(error)")
                }
            }
            await newcomer.terminate()
        }
    }
}
