import Attestation
import AttestationAPI
import AttestationService
import CleanRoom
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import SwiftASN1
import TestSupport
import Testing
import X509

/// Attack review F7: any attestable enclave whose runtime data names a contract and the broker's key (both public)
/// got a genuine token that moved that contract's rollback counter, bricking the clean room (every later restore
/// fails `rollback`). The broker now reads the enclave allowed to move the counter from the contract's canonical
/// bytes carried with the increment, and requires the token's enclave to be it, as the owners' release policy does.
@Suite("Clean room rollback counter: only the contract's enclave moves it")
struct CounterIdentityTests {
    static let requirement = Contract.EnclaveRequirement(
        signerID: try! Digest32(bytes: [UInt8](repeating: 0x22, count: 32)),
        productID: 3,
        minSecurityVersion: 2
    )
    static let state = String(repeating: "cd", count: 32)
    /// The counter request key the test enclaves bind (`x-ms-runtime.counterRequestKey`) and sign increments with.
    static let requestKey = P256.Signing.PrivateKey()

    /// `KeyReleaseTests.services()` with an attestation service that also issues tokens for debuggable enclaves
    /// (`x-ms-sgx-is-debuggable: true`), so the broker's own check is what refuses them.
    static func services() async throws -> KeyReleaseTests.Services {
        let platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        var configuration = AttestationServiceCore.Configuration(issuer: KeyReleaseTests.issuer)
        configuration.allowSimulated = true
        configuration.evidencePolicy.allowDebug = true
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = { time in
            try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
        }
        let store = try await SQLiteServiceStore.open(directory: Fixtures.temporaryDirectory() + "/attestation")
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        var serializer = DER.Serializer()
        try serializer.serialize(try Certificate(pemEncoded: core.signer.certificatePEM))
        let authority = BrokerAuthority(url: KeyReleaseTests.issuer, certificates: [serializer.serializedBytes])
        let broker = try KeyBroker(
            keyring: try BrokerKeyring.generate(
                name: "https://broker.cleanroom.test",
                authorities: KeyBroker.pins(of: [authority])
            ),
            authorities: [authority],
            name: "https://broker.cleanroom.test"
        )
        return KeyReleaseTests.Services(core: core, broker: broker, platform: platform)
    }

    /// A genuine token of the test attestation service for an enclave of `identity` whose runtime data names
    /// `contract`, the broker's signing key as `counterKey` and (unless nil) `requestKey` as `counterRequestKey`.
    static func token(
        _ services: KeyReleaseTests.Services,
        contract: String,
        signer: UInt8 = 0x22,
        unique: UInt8 = 0x11,
        product: UInt16 = 3,
        svn: UInt16 = 2,
        debug: Bool = false,
        requestKey: P256.Signing.PublicKey? = requestKey.publicKey
    ) async throws -> String {
        let key = Array(services.broker.keyring.signingKey.publicKey.rawRepresentation)
        let identity = EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: unique, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: signer, count: 32)),
            productID: product,
            securityVersion: svn,
            attributes: debug ? [.debug] : []
        )
        let runtime = Array(
            (#"{"contract":""# + contract + #"","counterKey":{"crv":"P-256","kid":"counter","kty":"EC","x":""#
                + Base64URL.encode(key.prefix(32)) + #"","y":""# + Base64URL.encode(key.suffix(32)) + #""}"#
                + (requestKey.map { requestKey in
                    let raw = Array(requestKey.rawRepresentation)
                    return #","counterRequestKey":{"crv":"P-256","kid":"counter-request","kty":"EC","x":""#
                        + Base64URL.encode(raw.prefix(32)) + #"","y":""# + Base64URL.encode(raw.suffix(32)) + #""}"#
                } ?? "") + "}").utf8
        )
        let evidence = try services.platform.quote(
            for: identity,
            reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
        )
        return try await services.core.attest(
            type: .simulatedEnclave,
            request: .init(evidence: evidence, runtimeData: (runtime, true))
        )
    }

    static func increment(
        _ services: KeyReleaseTests.Services,
        token: String,
        contract: String,
        document: [UInt8]?,
        signedBy signer: P256.Signing.PrivateKey? = requestKey,
        signing signed: String = state
    ) throws(KeyBrokerError) -> BrokerCounterResponse {
        let nonce = String(repeating: "ab", count: 16)
        let message = BrokerCounterRequest.incrementMessage(
            contract: contract,
            expected: 0,
            state: signed,
            nonce: nonce
        )
        return try services.broker.counter(
            BrokerCounterRequest(
                token: token,
                operation: "increment",
                contract: contract,
                nonce: nonce,
                expected: 0,
                state: state,
                current: nil,
                contractDocument: document,
                requestSignature: signer.flatMap { try? $0.signature(for: message) }.map { Array($0.rawRepresentation) }
            ),
            now: Date()
        )
    }

    /// The refusal of `body`, which must be `CounterNotAllowed` and name `what` (empty: any reason).
    static func refused(
        _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws(KeyBrokerError) -> BrokerCounterResponse
    ) {
        do {
            let moved = try body()
            Issue.record("the counter moved to \(moved.record.value)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == "CounterNotAllowed", "\(error)", sourceLocation: sourceLocation)
            #expect(what.isEmpty || error.reason.contains(what), "\(error)", sourceLocation: sourceLocation)
        }
    }

    /// Attack review F1 (session 20): the genuine enclave's runtime data and evidence are public (`GET /attestation`,
    /// every receipt), so anyone gets a genuine token of the contract's enclave from the attestation service. An
    /// increment with that token alone, without the enclave's signature over the request, moves nothing: otherwise
    /// a garbage state digest at `expected + 1` bricks the room (every save `rollbackCounter`, every restore
    /// `rollback`).
    @Test func aReplayedTokenOfTheContractsEnclaveMovesNothing() async throws {
        let services = try await Self.services()
        defer { Task { await services.close() } }
        let contract = Parties().contract(enclave: Self.requirement)
        let id = contract.id.hex
        let bytes = contract.canonicalBytes
        let genuine = try await Self.token(services, contract: id)
        // The genuine token alone (what anyone gets from the published evidence): refused.
        Self.refused("no signature") { () throws(KeyBrokerError) in
            try Self.increment(services, token: genuine, contract: id, document: bytes, signedBy: nil)
        }
        // Signed by another key than the token's counterRequestKey, or over another state digest: refused.
        Self.refused("does not verify") { () throws(KeyBrokerError) in
            try Self.increment(services, token: genuine, contract: id, document: bytes, signedBy: .init())
        }
        Self.refused("does not verify") { () throws(KeyBrokerError) in
            try Self.increment(
                services,
                token: genuine,
                contract: id,
                document: bytes,
                signing: String(repeating: "ef", count: 32)
            )
        }
        // A token binding no counterRequestKey (an older clean room enclave): refused by name.
        let older = try await Self.token(services, contract: id, requestKey: nil)
        Self.refused("binds no P-256 counterRequestKey") { () throws(KeyBrokerError) in
            try Self.increment(services, token: older, contract: id, document: bytes)
        }
        // The enclave's own signed request moves it (control).
        let moved = try Self.increment(services, token: genuine, contract: id, document: bytes)
        #expect(moved.record == BrokerCounterRecord(value: 1, state: Self.state))
    }

    @Test func anotherEnclaveNamingTheContractAndTheBrokersKeyMovesNothing() async throws {
        let services = try await Self.services()
        defer { Task { await services.close() } }
        let contract = Parties().contract(enclave: Self.requirement)
        let id = contract.id.hex
        let bytes = contract.canonicalBytes
        // Another signer's non-debug enclave (the attack), the right signer debuggable, below the minimum SVN,
        // another product: each refused by the claim that fails.
        let other = try await Self.token(services, contract: id, signer: 0x33)
        Self.refused("x-ms-sgx-mrsigner") { () throws(KeyBrokerError) in
            try Self.increment(services, token: other, contract: id, document: bytes)
        }
        let debuggable = try await Self.token(services, contract: id, debug: true)
        Self.refused("x-ms-sgx-is-debuggable") { () throws(KeyBrokerError) in
            try Self.increment(services, token: debuggable, contract: id, document: bytes)
        }
        let old = try await Self.token(services, contract: id, svn: 1)
        Self.refused("x-ms-sgx-svn") { () throws(KeyBrokerError) in
            try Self.increment(services, token: old, contract: id, document: bytes)
        }
        let product = try await Self.token(services, contract: id, product: 4)
        Self.refused("x-ms-sgx-product-id") { () throws(KeyBrokerError) in
            try Self.increment(services, token: product, contract: id, document: bytes)
        }

        let genuine = try await Self.token(services, contract: id)
        // No document, another contract's document, a document one byte changed, an oversized one: refused.
        Self.refused("no contract document") { () throws(KeyBrokerError) in
            try Self.increment(services, token: genuine, contract: id, document: nil)
        }
        var another = Parties()
        another.name = "another contract"
        let anotherBytes = another.contract(
            enclave: .init(
                signerID: try Digest32(bytes: [UInt8](repeating: 0x33, count: 32)),
                productID: 3,
                minSecurityVersion: 0
            )
        ).canonicalBytes
        Self.refused("is not contract") { () throws(KeyBrokerError) in
            try Self.increment(services, token: other, contract: id, document: anotherBytes)
        }
        var changed = bytes
        let index = try #require(changed.firstIndex(of: UInt8(ascii: "3")))
        changed[index] = UInt8(ascii: "4")
        Self.refused("is not contract") { () throws(KeyBrokerError) in
            try Self.increment(services, token: genuine, contract: id, document: changed)
        }
        // The changed bytes under their own ID (a token naming that ID): they do not read as a canonical contract,
        // or name another enclave; either way nothing moves for the attacker's enclave.
        let changedID = Hex.encode(Array(SHA256.hash(data: changed)))
        let changedToken = try await Self.token(services, contract: changedID, signer: 0x33)
        Self.refused("") { () throws(KeyBrokerError) in
            try Self.increment(services, token: changedToken, contract: changedID, document: changed)
        }
        Self.refused("larger than") { () throws(KeyBrokerError) in
            try Self.increment(
                services,
                token: genuine,
                contract: id,
                document: bytes + [UInt8](repeating: 0x20, count: CanonicalJSON.maxBytes)
            )
        }

        // The contract's own enclave (signer, product, SVN at least the minimum, not debuggable) moves it.
        let moved = try Self.increment(services, token: genuine, contract: id, document: bytes)
        #expect(moved.record == BrokerCounterRecord(value: 1, state: Self.state))
        let newer = try await Self.token(services, contract: id, svn: 7)
        let again = try Self.increment(services, token: newer, contract: id, document: bytes)
        #expect(again.record.value == 1)
    }

    /// A contract that pins its clean room's build (`enclave.uniqueID`) moves only for that build: another build of
    /// the same signer and product is refused by the `x-ms-sgx-mrenclave` claim (review 6, E).
    @Test func aContractPinningABuildMovesOnlyForThatBuild() async throws {
        let services = try await Self.services()
        defer { Task { await services.close() } }
        var requirement = Self.requirement
        requirement.uniqueID = try Digest32(bytes: [UInt8](repeating: 0x44, count: 32))
        let contract = Parties().contract(enclave: requirement)
        let id = contract.id.hex
        let otherBuild = try await Self.token(services, contract: id)
        Self.refused("x-ms-sgx-mrenclave") { () throws(KeyBrokerError) in
            try Self.increment(services, token: otherBuild, contract: id, document: contract.canonicalBytes)
        }
        let pinnedBuild = try await Self.token(services, contract: id, unique: 0x44)
        let moved = try Self.increment(services, token: pinnedBuild, contract: id, document: contract.canonicalBytes)
        #expect(moved.record == BrokerCounterRecord(value: 1, state: Self.state))
    }
}
