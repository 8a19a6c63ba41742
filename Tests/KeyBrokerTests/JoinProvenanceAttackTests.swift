import AttestationAPI
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import Testing

/// The newcomer's side of a replica join checks its granter with the authorities its host passes. A host that opens a
/// new instance with `--join` trusting a certificate of its own answers the join with a keyring it made itself (a
/// token over fake "granter" evidence signed by that certificate), then reopens the instance with the genuine authority
/// list: clients would see a genuine broker enclave with exactly the expected authorities, and an import key whose
/// private key the host knows. The keyring must open only while the certificate it was joined under is trusted (so a
/// forged one stays in the list the evidence binds, where clients refuse it).
@Suite("KeyBroker: a keyring joined under a forged certificate", .serialized)
struct JoinProvenanceAttackTests {
    static let genuine = TestAuthority.shared

    /// What the newcomer's host forges: a keyring of its own, and a token of `forged` over "granter" evidence naming
    /// `signer` and product 1, binding the newcomer's key `newcomer` and that keyring's identity.
    static func forgery(
        newcomer target: WrapJWK,
        signer: String = TestKeys.signer,
        forged: TestAuthority
    ) throws -> (keyring: BrokerKeyring, grant: String, token: String) {
        // The host may even copy the genuine pins into its keyring: they are its own choice.
        let fake = try BrokerKeyring.generate(
            name: "https://broker.example",
            authorities: KeyBroker.pins(of: [genuine.brokerAuthority])
        )
        let grant = try ECDHESJWE.encrypt(
            fake.bytes,
            to: try target.wrapTarget(),
            contentType: KeyBroker.keyringContentType
        )
        let runtime = TokenValue.object([
            "purpose": .string(KeyBroker.joinGrantPurpose),
            "newcomer": .object([
                "kty": .string("EC"), "crv": .string("P-256"), "x": .string(target.x ?? ""),
                "y": .string(target.y ?? ""),
            ]),
            "keyring": .string(KeyBroker.keyringIdentity(fake)),
            "authorities": try KeyBroker.pins(of: [genuine.brokerAuthority]).runtimeValue,
        ])
        let claims = forged.claims(keys: []).merging([
            "x-ms-runtime": runtime, "x-ms-sgx-mrsigner": .string(signer),
        ]) { $1 }
        return (fake, grant, try forged.token(claims))
    }

    static let identity = KeyBroker.ReplicaIdentity(
        signerID: TestKeys.signer,
        productID: 1,
        securityVersion: 3,
        debug: false
    )

    /// The attack on the `KeyBroker` value: the join completes under the forged certificate (the enclave can't tell),
    /// but the joined keyring does not open under the genuine list, whatever the forged certificate's URL.
    @Test(arguments: [TestAuthority.shared.url, "https://attacker.example"])
    func aKeyringJoinedUnderAForgedCertificateDoesNotOpenUnderTheGenuineList(url: String) throws {
        let forged = try TestAuthority(url: url)
        let newcomer = P256.KeyAgreement.PrivateKey()
        let forgery = try Self.forgery(newcomer: WrapJWK(p256: newcomer.publicKey), forged: forged)
        let joined = try KeyBroker.completeJoin(
            grant: forgery.grant,
            granterToken: forgery.token,
            with: newcomer,
            authorities: [forged.brokerAuthority],
            newcomer: Self.identity,
            now: Date()
        )
        #expect(joined.bytes == forgery.keyring.bytes)
        do {
            let reopened = try KeyBroker(
                keyring: joined,
                authorities: [Self.genuine.brokerAuthority],
                name: "https://broker.example"
            )
            let hostKnowsIt =
                reopened.importKeyJWK
                == (try KeyBroker(
                    keyring: forgery.keyring,
                    authorities: [],
                    name: "https://broker.example"
                )).importKeyJWK
            Issue.record(
                "the keyring the host made opened under the genuine authority list (host knows the import key: \(hostKnowsIt))"
            )
        } catch {
            #expect(error.code == KeyBrokerError.keyringAuthorityNotTrusted, "\(error)")
            #expect(error.reason.contains(forged.kid), "\(error)")
        }
        // To open it the host must keep the forged certificate trusted, and the evidence then names it: the list is not
        // the genuine one, which clients refuse (`BrokerAuthoritiesNotExpected`).
        let withForged = Self.merged([Self.genuine.brokerAuthority, forged.brokerAuthority])
        let visible = try KeyBroker(keyring: joined, authorities: withForged, name: "https://broker.example")
        #expect(visible.pinnedAuthorities != (try KeyBroker.pins(of: [Self.genuine.brokerAuthority])))
        #expect(visible.pinnedAuthorities.description.contains(forged.kid))
    }

    /// The authorities of `list` merged by URL (one authority with every certificate).
    static func merged(_ list: [BrokerAuthority]) -> [BrokerAuthority] {
        var merged: [BrokerAuthority] = []
        for authority in list {
            if let index = merged.firstIndex(where: { $0.url == authority.url }) {
                merged[index].certificates += authority.certificates
            } else {
                merged.append(authority)
            }
        }
        return merged
    }

    /// The same attack on the real broker enclave: `BrokerJoinRequest`, the host's forged grant and token through
    /// `BrokerJoinComplete` with the forged certificate, then `BrokerOpen` of the sealed keyring with the genuine list.
    @Test func theBrokerEnclaveJoinedUnderAForgedCertificateDoesNotOpenUnderTheGenuineList() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let signed = try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1)
        let enclave = try await BrokerEnclaveFixture.load(signed, on: platform)
        do {
            try await Self.attack(enclave, signer: signed.identity.signerID.hex)
        } catch {
            await enclave.terminate()
            throw error
        }
        await enclave.terminate()
    }

    static func attack(_ enclave: Enclave, signer: String) async throws {
        let offer = try await enclave.call(BrokerJoinRequest.self, Empty())
        let offered = try JSONDecoder().decode(WrapJWK.self, from: Data(offer.key.utf8))
        let forged = try TestAuthority(url: genuine.url)
        let forgery = try Self.forgery(newcomer: offered, signer: signer, forged: forged)
        let sealed = try await enclave.call(
            BrokerJoinComplete.self,
            BrokerJoinCompleteRequest(
                grant: forgery.grant,
                granterToken: forgery.token,
                authorities: [forged.brokerAuthority]
            )
        )
        let fakeImportKey = try KeyBroker(keyring: forgery.keyring, authorities: [], name: "https://broker.test")
            .importKeyJWK
        do {
            let opened = try await enclave.call(
                BrokerOpen.self,
                BrokerOpenRequest(
                    sealedKeyring: sealed,
                    authorities: [genuine.brokerAuthority],
                    brokerName: "https://broker.test"
                )
            )
            let runtime = try JSONDecoder().decode(TokenValue.self, from: Data(opened.runtimeData))
            Issue.record(
                """
                the broker enclave opened the host's keyring under the genuine list (host knows the import key: \
                \(opened.importKey == fakeImportKey); evidence: \(runtime.jsonText.prefix(300)))
                """
            )
        } catch let error as EnclaveError {
            #expect("\(error)".contains(KeyBrokerError.keyringAuthorityNotTrusted), "\(error)")
        }
        // Opened with the forged certificate kept, the evidence names it: not exactly the genuine list.
        let visible = try await enclave.call(
            BrokerOpen.self,
            BrokerOpenRequest(
                sealedKeyring: sealed,
                authorities: merged([genuine.brokerAuthority, forged.brokerAuthority]),
                brokerName: "https://broker.test"
            )
        )
        #expect(visible.importKey == fakeImportKey)
        let runtime = try JSONDecoder().decode(TokenValue.self, from: Data(visible.runtimeData))
        guard case .object(let members) = runtime else {
            Issue.record("the runtime data is not an object")
            return
        }
        #expect(members["authorities"] != (try KeyBroker.pins(of: [genuine.brokerAuthority])).runtimeValue)
        #expect(runtime.jsonText.contains(forged.kid))
    }

    /// A genuine join records the certificate of the granter's token; the record survives sealing (format 2) and the
    /// keyring opens under the list it was joined with (control). Broken records are refused by name.
    @Test func aGenuineJoinRecordsItsCertificateAndOpens() throws {
        let granter = KeyReleaseTests.broker
        let newcomer = P256.KeyAgreement.PrivateKey()
        let wrap = WrapJWK(p256: newcomer.publicKey, kid: "join")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let granted = try granter.grantJoin(
            BrokerJoinGrantRequest(
                token: try Self.genuine.token(Self.genuine.claims(keys: [TestKeys.jwk(wrap)])),
                key: String(decoding: try encoder.encode(wrap), as: UTF8.self)
            ),
            granter: Self.identity,
            now: Date()
        )
        let runtime = try JSONDecoder().decode(TokenValue.self, from: Data(granted.runtimeData))
        let joined = try KeyBroker.completeJoin(
            grant: granted.grant,
            granterToken: try Self.genuine.token(
                Self.genuine.claims(keys: []).merging(["x-ms-runtime": runtime]) { $1 }
            ),
            with: newcomer,
            authorities: [Self.genuine.brokerAuthority],
            newcomer: Self.identity,
            now: Date()
        )
        #expect(joined.bytes == granter.keyring.bytes)
        #expect(joined.joinedUnder == (try KeyBroker.pins(of: [Self.genuine.brokerAuthority])))
        #expect(granter.keyring.joinedUnder == .none)
        let reread = try BrokerKeyring(sealedRecord: joined.sealedRecord)
        #expect(reread.joinedUnder == joined.joinedUnder && reread.bytes == joined.bytes)
        let opened = try KeyBroker(keyring: reread, authorities: [Self.genuine.brokerAuthority], name: "https://b.test")
        #expect(opened.importKeyJWK == granter.importKeyJWK)
        // Dropping the certificate the keyring was joined under is refused even with another one of that authority.
        let rotated = try TestAuthority(url: Self.genuine.url)
        let refused = #expect(throws: KeyBrokerError.self) {
            _ = try KeyBroker(keyring: reread, authorities: [rotated.brokerAuthority], name: "https://b.test")
        }
        #expect(refused?.code == KeyBrokerError.keyringAuthorityNotTrusted, "\(String(describing: refused))")
        // A record with a byte more, a byte less, or the keyring alone (format 1's plaintext) does not open.
        let record = joined.sealedRecord
        for (name, bytes) in [
            ("trailing byte", record + [0]), ("truncated", Array(record.dropLast())), ("keyring alone", joined.bytes),
            ("empty", []),
        ] {
            let broken = #expect(throws: KeyBrokerError.self, "\(name)") { _ = try BrokerKeyring(sealedRecord: bytes) }
            #expect(broken?.code == KeyBrokerError.keyringInvalid, "\(name): \(String(describing: broken))")
        }
    }

    /// A keyring sealed in format 1 (the keyring alone, `enclavekit.keybroker.keyring.v1`) does not record the
    /// certificate it was joined under (an older enclave of the same signer could have sealed a keyring its host made):
    /// refused by name. Format 2 reopens (control).
    @Test func aFormatOneSealedKeyringIsRefused() async throws {
        let platform = try BrokerEnclaveFixture.platform()
        let signed = try BrokerEnclaveFixture.sign(key: P256.Signing.PrivateKey(), securityVersion: 1)
        let enclave = try await BrokerEnclaveFixture.load(signed, on: platform)
        do {
            let request = BrokerOpenRequest(
                sealedKeyring: nil,
                authorities: [Self.genuine.brokerAuthority],
                brokerName: "https://broker.test"
            )
            let first = try await enclave.call(BrokerOpen.self, request)
            let sealed = try #require(first.newSealedKeyring as [UInt8]?)
            var again = request
            again.sealedKeyring = sealed
            let reopened = try await enclave.call(BrokerOpen.self, again)
            #expect(reopened.importKey == first.importKey)
            // The same keyring sealed as format 1 by the same signer (the platform's sealing key, as an enclave gets it).
            let (header, bodyStart) = try SealedHeader.parse(sealed)
            let root = try platform.key(
                PlatformProtocol.KeyRequest(name: .seal, policy: .signerID, securityVersion: header.securityVersion),
                for: signed.identity
            )
            let record = try SealingCipher.openBlob(
                sealed,
                bodyStart: bodyStart,
                key: SealingCipher.blobKey(root: root, keyID: header.keyID)
            )
            var old = header
            old.additionalData = Array("enclavekit.keybroker.keyring.v1".utf8)
            let formatOne = try SealingCipher.sealBlob(
                try BrokerKeyring(sealedRecord: record).bytes,
                header: old,
                key: SealingCipher.blobKey(root: root, keyID: header.keyID)
            )
            again.sealedKeyring = formatOne
            do {
                _ = try await enclave.call(BrokerOpen.self, again)
                Issue.record("a format-1 sealed keyring opened")
            } catch let error as EnclaveError {
                #expect(error.code == .invalidSignature, "\(error)")
                #expect("\(error)".contains(KeyBrokerError.keyringOutdated), "\(error)")
            }
        } catch {
            await enclave.terminate()
            throw error
        }
        await enclave.terminate()
    }
}
