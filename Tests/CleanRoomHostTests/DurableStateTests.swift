import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import TestSupport
import Testing

/// The clean room's durable state: the privacy budget ledger and the receipt chain head, sealed by the enclave and
/// kept by the untrusted host, survive a restart of the host and the enclave.
@Suite("Clean room durable state", .serialized)
struct DurableStateTests {
    let parties = Parties()
    static let budgetMilli: Int64 = 3500

    /// A host over the store in `directory`, driving a fresh process of the enclave `signed`. ``close()`` may be
    /// called more than once (a test closes a room to restart it and again on every way out).
    struct Room {
        let host: CleanRoomHost
        let store: CleanRoomStore
        let enclave: Enclave

        func close() async {
            try? await store.close()
            await enclave.terminate()
        }
    }

    static func start(_ signed: Fixtures.Signed, directory: String, ocalls: OCallTable? = nil) async throws -> Room {
        let store = try await CleanRoomStore.open(directory: directory)
        var options = Enclave.Options()
        options.ocalls = ocalls ?? CleanRoomHost.ocalls(directory: directory)
        options.platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        options.evidenceSource = .simulated
        options.signaturePath = signed.signature
        options.startTimeout = .seconds(120)  // generous: a loaded CI machine starts enclaves slowly
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let host = try await CleanRoomHost(store: store, enclave: enclave)
        return Room(host: host, store: store, enclave: enclave)
    }

    /// The test contract with differential privacy on bank-a (ε 1 per query, `budgetMilli` in all) and a noised
    /// count query.
    func contract(_ signed: Fixtures.Signed) -> Contract {
        var contract = parties.contract(
            enclave: .init(
                signerID: signed.identity.signerID,
                productID: signed.identity.productID,
                minSecurityVersion: 1
            )
        )
        for index in contract.outputRules.indices where contract.outputRules[index].owner == "bank-a" {
            contract.outputRules[index].privacy = .init(epsilonMilli: 1000, budgetMilli: Self.budgetMilli)
        }
        contract.queries.append(
            .init(
                id: "dp-count",
                sql:
                    "SELECT merchant, COUNT(DISTINCT card) AS n, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx "
                    + "GROUP BY merchant",
                parameters: [],
                runners: ["analyst"],
                reads: ["a_tx"],
                computed: ["n"],
                noise: [.init(column: "n", sensitivity: 1)]
            )
        )
        contract.sortLists()
        return contract
    }

    /// Upload and load a_tx into `room`'s enclave, its key wrapped to the enclave's attested key; answers the key.
    @discardableResult
    func load(_ room: Room, _ contract: Contract) async throws -> SymmetricKey {
        let opened = try await room.host.attestation()
        let dataKey = SymmetricKey(size: .bits256)
        var csv = "card,merchant,amount\n"
        for index in 0..<40 { csv += "card-\(index % 10),shop-big,\(index)\n" }
        let file = try DataFileEncryptor.encrypt(
            Array(csv.utf8),
            dataKey: dataKey,
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        _ = try await room.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        _ = try await room.host.loadDataSet(
            name: "a_tx",
            wrappedKey: try DataSetLoadTests.wrap(dataKey.withUnsafeBytes { Array($0) }, for: opened)
        )
        return dataKey
    }

    func run(_ room: Room, _ contract: Contract) async throws -> Receipt {
        let answer = try await room.host.runQuery(try QueryTests().request(contract, "dp-count", key: parties.analyst))
        return try Receipt(canonicalBytes: answer.receipt)
    }

    /// The code of the refusal `body` throws.
    static func refusal(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as ServiceError {
            return error.code
        } catch {
            return "\(error)"
        }
    }

    @Test func theBudgetSpentAndTheReceiptChainSurviveARestart() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = contract(signed)
        let dataKey = SymmetricKey(size: .bits256)
        var csv = "card,merchant,amount\n"
        for index in 0..<40 { csv += "card-\(index % 10),shop-big,\(index)\n" }
        let file = try DataFileEncryptor.encrypt(
            Array(csv.utf8),
            dataKey: dataKey,
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        func loadData(_ room: Room) async throws {
            let opened = try await room.host.attestation()
            _ = try await room.host.loadDataSet(
                name: "a_tx",
                wrappedKey: try DataSetLoadTests.wrap(dataKey.withUnsafeBytes { Array($0) }, for: opened)
            )
        }

        // First life: contract, signatures, data, two DP queries (2 of 3.5 ε spent).
        let first = try await Self.start(signed, directory: directory)
        defer { Task { await first.close() } }
        _ = try await first.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await first.host.submitSignature(signature) }
        _ = try await first.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        try await loadData(first)
        var receipts = [try await run(first, contract), try await run(first, contract)]
        #expect(receipts.map(\.epsilonSpentMilli) == [1000, 1000])
        #expect(
            FileManager.default.fileExists(
                atPath: try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))
            )
        )
        await first.close()

        // Second life: a new host process and a new enclave over the same data directory. The budget spent before
        // is still spent and the chain continues where it stopped.
        let second = try await Self.start(signed, directory: directory)
        defer { Task { await second.close() } }
        try await loadData(second)
        receipts.append(try await run(second, contract))
        #expect(receipts[2].sequence == 2)
        #expect(receipts[2].previous == receipts[1].digest)
        try ReceiptChain.verify(receipts, evidenceKey: QueryTests.receiptKey)
        // 3 of 3.5 ε spent: the next DP query is refused by name, across the restart.
        let code = await Self.refusal { _ = try await run(second, contract) }
        #expect(code == "budgetExhausted")
        await second.close()

        // Third life: still exhausted (the refusal spent nothing and changed nothing).
        let third = try await Self.start(signed, directory: directory)
        defer { Task { await third.close() } }
        try await loadData(third)
        #expect(await Self.refusal { _ = try await run(third, contract) } == "budgetExhausted")
        await third.close()
    }

    @Test func aTamperedSavedStateIsRefusedByName() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = contract(signed)
        let first = try await Self.start(signed, directory: directory)
        defer { Task { await first.close() } }
        _ = try await first.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await first.host.submitSignature(signature) }
        try await load(first, contract)
        _ = try await run(first, contract)
        await first.close()

        let path = try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: path))
        let second = try await Self.start(signed, directory: directory)
        defer { Task { await second.close() } }
        let status = await second.host.enclaveStatus()
        #expect(status.refusal?.hasPrefix("stateTampered:") == true, "\(status.refusal ?? "no refusal")")
        #expect(await Self.refusal { _ = try await second.host.attestation() } == "NotOpen")
    }

    /// What the TestEnclave's `test.seal` ECALL takes (its interface module is not a dependency here).
    struct TestSealRequest: Codable, Sendable {
        var plaintext: [UInt8]
        var policy: SealPolicy
        var additionalData: [UInt8]
    }

    /// The TestEnclave's seal ECALL: seals any plaintext with the enclave's own sealing key.
    enum TestSeal: EnclaveCall {
        typealias Input = TestSealRequest
        typealias Output = [UInt8]
        static var name: String { "test.seal" }
    }

    /// F8: a build of the contract's signer and product below the contract's minimum security version (an older,
    /// maybe flawed one, which can't open under the contract) can still seal a state the current build unseals: here
    /// a fresh ledger (the privacy budget spent before, forgotten). The current build refuses it by name.
    @Test func aStateSealedBelowTheContractsMinimumSecurityVersionIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let key = P256.Signing.PrivateKey()
        let signed = try Fixtures.sign(
            "CleanRoomEnclave",
            config: EnclaveConfig(productID: 1, securityVersion: 2),
            key: key
        )
        var contract = contract(signed)
        contract.enclave = .init(
            signerID: signed.identity.signerID,
            productID: signed.identity.productID,
            minSecurityVersion: 2
        )
        let first = try await Self.start(signed, directory: directory)
        defer { Task { await first.close() } }
        _ = try await first.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await first.host.submitSignature(signature) }
        try await load(first, contract)
        #expect(try await run(first, contract).epsilonSpentMilli == 1000)
        await first.close()

        // The older build (security version 1, same signer and product) mints a state with a fresh ledger.
        let older = try Fixtures.sign("TestEnclave", config: EnclaveConfig(productID: 1, securityVersion: 1), key: key)
        var options = Enclave.Options()
        options.platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        options.evidenceSource = .simulated
        options.signaturePath = older.signature
        options.startTimeout = .seconds(120)
        let minting = try await Enclave.load(path: older.image, options: options)
        defer { Task { await minting.terminate() } }
        let forged = CanonicalJSON.object([
            "domain": .string("EnclaveKit.cleanroom.state.v2"),
            "contract": .string(contract.id.hex),
            "generation": .integer(0),
            "ledger": .string(""),
            "halts": .array([]),
            "uploads": .object([:]),
        ]).canonicalBytes
        let blob = try await minting.call(
            TestSeal.self,
            .init(plaintext: forged, policy: .signerID, additionalData: [])
        )
        await minting.terminate()
        let path = try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))
        try Data(blob).write(to: URL(fileURLWithPath: path))

        let second = try await Self.start(signed, directory: directory)
        defer { Task { await second.close() } }
        let refusal = await second.host.enclaveStatus().refusal
        #expect(refusal?.hasPrefix("stateTampered:") == true, "\(refusal ?? "no refusal")")
        #expect(refusal?.contains("security version 1") == true, "\(refusal ?? "no refusal")")
        #expect(await Self.refusal { _ = try await second.host.attestation() } == "NotOpen")
    }
}
