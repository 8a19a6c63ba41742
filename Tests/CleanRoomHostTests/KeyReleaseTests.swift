import Attestation
import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import HummingbirdTesting
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import SwiftASN1
import TestSupport
import Testing
import X509

/// The owners' keys live in the key broker with a release policy built from the contract; the host carries the
/// clean room's evidence to an attestation service and the token to the broker (both in this process, the broker's
/// real release decision), and loads the data set with the JWE it gets. The contract's clean room gets the key; a
/// clean room opened under a contract one byte away, or an enclave of another signer, is refused by the broker's
/// policy and nothing loads.
@Suite("Clean room key release through the key broker", .serialized)
struct KeyReleaseTests {
    let parties = Parties()
    static let issuer = "http://attest.cleanroom.test"

    /// The attestation service (trusting the tests' simulated platform) and the broker trusting it.
    struct Services: Sendable {
        let core: AttestationServiceCore
        let broker: KeyBroker
        let platform: SimulatedPlatform

        func close() async { try? await core.store.close() }

        /// The owner's data key imported as `name`, exportable under the contract's policy.
        func importKey(_ dataKey: [UInt8], name: String, policy: [UInt8]) throws -> StoredKey {
            let jwk = try JSONDecoder().decode(WrapJWK.self, from: Data(broker.importKeyJWK.utf8))
            guard case .rsa(let importKey) = try jwk.wrapTarget() else { throw EnclaveError.malformedInput("RSA") }
            var request = BrokerImportKeyRequest(
                name: name,
                version: "1",
                type: .aes256,
                wrappedKey: [],
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: policy, immutable: true)
            )
            // The owner's import intent (name, attributes, policy, the broker's pins) wrapped with the key.
            request.wrappedKey = try RSAAESKeyWrap.wrap(broker.importIntent(request).payload(dataKey), to: importKey)
            return try broker.importKey(request)
        }

        /// The host's key release against these services, the broker holding `keys`.
        func keyRelease(_ keys: [String: StoredKey]) -> CleanRoomKeyRelease {
            CleanRoomKeyRelease(
                attest: { runtimeData, evidence in
                    try await core.attest(
                        type: .simulatedEnclave,
                        request: .init(evidence: evidence.bytes, runtimeData: (runtimeData, true))
                    )
                },
                release: { name, _, token in
                    guard let key = keys[name] else {
                        throw ServiceError(status: .notFound, code: "KeyNotFound", message: "no key \(name)")
                    }
                    let answer = broker.release(
                        BrokerReleaseRequest(key: key, target: token, enc: "ECDH-ES+A256KW"),
                        now: Date()
                    )
                    guard let value = answer.value else {
                        let refusal = answer.refusal ?? BrokerRefusal(code: "Refused", message: "no answer")
                        throw ServiceError(status: .forbidden, code: refusal.code, message: refusal.message)
                    }
                    return value
                }
            )
        }
    }

    static func services() async throws -> Services {
        let platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        var configuration = AttestationServiceCore.Configuration(issuer: issuer)
        configuration.allowSimulated = true
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = { time in
            try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
        }
        let store = try await SQLiteServiceStore.open(directory: Fixtures.temporaryDirectory() + "/attestation")
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        var serializer = DER.Serializer()
        try serializer.serialize(try Certificate(pemEncoded: core.signer.certificatePEM))
        // The keyring pins the authority, as the broker enclave's does (counter tokens need a pinned certificate).
        let authority = BrokerAuthority(url: issuer, certificates: [serializer.serializedBytes])
        let broker = try KeyBroker(
            keyring: try BrokerKeyring.generate(
                name: "https://broker.cleanroom.test",
                authorities: KeyBroker.pins(of: [authority])
            ),
            authorities: [authority],
            name: "https://broker.cleanroom.test"
        )
        return Services(core: core, broker: broker, platform: platform)
    }

    /// `rows` rows of a_tx encrypted under `dataKey` for `contract`.
    static func dataFile(_ dataKey: [UInt8], contract: Contract, rows: Int = 300) throws -> [UInt8] {
        var csv = "card,merchant,amount\n"
        for index in 0..<rows { csv += "card-\(index % 30),shop-\(index % 5),\(index)\n" }
        return try DataFileEncryptor.encrypt(
            Array(csv.utf8),
            dataKey: SymmetricKey(data: dataKey),
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
    }

    @Test("The contract's clean room gets the owner's key from the broker and loads (upload with ?key=)")
    func theContractsCleanRoomGetsTheKey() async throws {
        let services = try await Self.services()
        let dataKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        var keys: [String: StoredKey] = [:]
        let keysBox = KeysBox()
        let harness = try await CleanRoomHostRoutesTests.harness(keyRelease: keysBox.release(services))
        defer {
            Task {
                await harness.close()
                await services.close()
            }
        }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        keys["bank-a-tx"] = try services.importKey(
            dataKey,
            name: "bank-a-tx",
            policy: CleanRoomKeyRelease.releasePolicy(contract: contract, issuer: Self.issuer, counterKey: nil)
        )
        keysBox.set(keys)
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await harness.host.submitSignature(signature) }
        let file = try Self.dataFile(dataKey, contract: contract)
        let signed: HTTPFields = [
            .init(CleanRoomServer.ownerSignatureHeader)!: try parties.uploadSignature(
                file,
                dataSet: "a_tx",
                contract: contract
            ),
            .init(CleanRoomServer.uploadDigestHeader)!: Parties.sha256(file),
        ]
        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            let answer = try await CleanRoomHostRoutesTests.send(
                client,
                .put,
                "/datasets/a_tx?key=bank-a-tx",
                file,
                headers: signed
            )
            #expect(answer.status == 200, "\(answer.text)")
            #expect(answer.text.contains("\"rows\":300"), "\(answer.text)")
        }
        let status = try await HostStatus.of(harness.host)
        #expect(status.dataSets.first { $0.name == "a_tx" }?.rows == 300)
    }

    @Test("A clean room opened under a contract one byte away is refused by the broker's policy; nothing loads")
    func anotherContractIsRefused() async throws {
        let services = try await Self.services()
        let keysBox = KeysBox()
        let harness = try await CleanRoomHostRoutesTests.harness(keyRelease: keysBox.release(services))
        defer {
            Task {
                await harness.close()
                await services.close()
            }
        }
        let dataKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let contract = parties.contract(enclave: harness.fixture.requirement)
        // The owner's key, for the real contract.
        keysBox.set([
            "bank-a-tx": try services.importKey(
                dataKey,
                name: "bank-a-tx",
                policy: CleanRoomKeyRelease.releasePolicy(contract: contract, issuer: Self.issuer, counterKey: nil)
            )
        ])
        // The host opens the same clean room enclave under a contract whose name differs in one byte.
        var near = parties
        near.name = "shared fraud patternz"
        let other = near.contract(enclave: harness.fixture.requirement)
        #expect(other.id != contract.id)
        _ = try await harness.host.submitContract(other.canonicalBytes)
        for signature in try near.signatures(other) { _ = try await harness.host.submitSignature(signature) }
        let file = try Self.dataFile(dataKey, contract: other)
        _ = try await harness.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try near.uploadSignature(file, dataSet: "a_tx", contract: other),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "a_tx", brokerKey: "bank-a-tx", version: nil)
        }
        #expect(refused?.code == BrokerRefusal.Code.policyNotSatisfied, "\(String(describing: refused))")
        #expect(refused?.status == .forbidden)
        #expect(refused?.message.contains("x-ms-runtime.contract") == true, "\(String(describing: refused))")
        let status = try await HostStatus.of(harness.host)
        #expect(status.dataSets.first { $0.name == "a_tx" }?.rows == nil, "nothing may load")
    }

    @Test("An enclave of another signer whose runtime data names the contract is refused by the broker's policy")
    func anotherSignerIsRefused() async throws {
        let services = try await Self.services()
        defer { Task { await services.close() } }
        let fixture = try await CleanRoomEnclaveFixture.load()
        defer { Task { await fixture.enclave.terminate() } }
        let contract = parties.contract(enclave: fixture.requirement)
        let key = try services.importKey(
            (0..<32).map { UInt8($0) },
            name: "bank-a-tx",
            policy: CleanRoomKeyRelease.releasePolicy(contract: contract, issuer: Self.issuer, counterKey: nil)
        )
        let release = services.keyRelease(["bank-a-tx": key])

        // A rogue host's enclave, signed by someone else, claims the contract in its runtime data (what the real
        // clean room enclave refuses to do: it opens only under a contract that names its own signer).
        let rogue = P256.KeyAgreement.PrivateKey()
        let raw = rogue.publicKey.rawRepresentation
        let runtime = Array(
            (#"{"contract":""# + contract.id.hex + #"","keys":[{"crv":"P-256","kid":"rogue","kty":"EC","x":""#
                + Base64URL.encode(raw.prefix(32)) + #"","y":""# + Base64URL.encode(raw.suffix(32)) + #""}]}"#)
                .utf8
        )
        let identity = EnclaveIdentity(
            uniqueID: fixture.signed.identity.uniqueID,
            signerID: try Digest32(bytes: [UInt8](repeating: 0x66, count: 32)),
            productID: fixture.signed.identity.productID,
            securityVersion: fixture.signed.identity.securityVersion,
            attributes: []
        )
        let quote = try services.platform.quote(
            for: identity,
            reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
        )
        let evidence = AttestationEvidence(provider: AttestationEvidence.simulatedProvider, bytes: quote)
        let token = try await release.attest(runtime, evidence)
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await release.release("bank-a-tx", nil, token)
        }
        #expect(refused?.code == BrokerRefusal.Code.policyNotSatisfied, "\(String(describing: refused))")
        #expect(refused?.message.contains("x-ms-sgx-mrsigner") == true, "\(String(describing: refused))")

        // The same token for the contract's own signer would pass: the refusal is the signer's.
        let genuine = EnclaveIdentity(
            uniqueID: identity.uniqueID,
            signerID: fixture.signed.identity.signerID,
            productID: identity.productID,
            securityVersion: identity.securityVersion,
            attributes: []
        )
        let genuineQuote = try services.platform.quote(
            for: genuine,
            reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
        )
        let genuineToken = try await release.attest(
            runtime,
            AttestationEvidence(provider: AttestationEvidence.simulatedProvider, bytes: genuineQuote)
        )
        let answer = try await release.release("bank-a-tx", nil, genuineToken)
        #expect(!(try CleanRoomKeyRelease.wrappedKey(fromReleaseAnswer: answer)).isEmpty)
    }

    @Test("A release answer that is not the broker's shape is refused by name")
    func malformedAnswersAreRefused() throws {
        for answer in ["", "a.b", "a.\(Base64URL.encode(Array("{}".utf8))).c", String(repeating: "x", count: 300_000)] {
            let refused = #expect(throws: ServiceError.self) {
                _ = try CleanRoomKeyRelease.wrappedKey(fromReleaseAnswer: answer)
            }
            #expect(refused?.code == "BadReleaseAnswer", "\(String(describing: refused))")
        }
    }
}

/// The broker's keys, set once the contract (hence the policy) is known, read by the release closure.
final class KeysBox: @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [String: StoredKey] = [:]

    func set(_ keys: [String: StoredKey]) { lock.withLock { self.keys = keys } }

    func release(_ services: KeyReleaseTests.Services) -> CleanRoomKeyRelease {
        CleanRoomKeyRelease(
            attest: { runtimeData, evidence in
                try await services.keyRelease([:]).attest(runtimeData, evidence)
            },
            release: { name, version, token in
                try await services.keyRelease(self.lock.withLock { self.keys }).release(name, version, token)
            }
        )
    }
}
