import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import TestSupport
import Testing

/// `enclave cleanroom result open` and `receipt verify` on a genuine run's files (the clean room runs in this
/// process, the CLI as a child on the same simulated platform): a result is opened only beside the verified receipt
/// that names its digest, and a receipt verifies only as the enclave a contract names.
///
/// These drive the CLI but live here because the genuine run needs this target's clean room helpers.
@Suite("Clean room CLI: result open and receipt verify", .serialized)
struct ResultOpenCLITests {
    let queries = QueryTests()

    /// The files of two genuine runs: the contract, each run's result and receipt, the analyst's recipient key.
    struct Files {
        let directory: String
        let contract: Contract
        var path: (String) -> String { { directory + "/" + $0 } }
    }

    func genuineRuns() async throws -> Files {
        let (harness, contract) = try await queries.loaded()
        defer { Task { await harness.close() } }
        let directory = try Fixtures.temporaryDirectory()
        func write(_ bytes: [UInt8], _ name: String) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        try write(contract.canonicalBytes, "contract.json")
        try write(Array((Base64URL.encode(queries.parties.recipient.rawRepresentation) + "\n").utf8), "analyst.x25519")
        for run in 1...2 {
            let answer = try await harness.host.runQuery(try queries.request(contract, "count-by-merchant"))
            try write(answer.result, "result\(run).json")
            try write(answer.receipt, "receipt\(run).json")
        }
        return Files(directory: directory, contract: contract)
    }

    func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Fixtures.run(ChildProcess.cli, ["cleanroom"] + arguments)
    }

    /// F4: the host builds an envelope of its own to the analyst's public key (or serves one of an earlier run) beside
    /// the genuine receipt. The receipt verifies, but its result digest is not the envelope's: `result open` refuses
    /// (`badResult`), and it refuses to open anything without a receipt.
    @Test func aForgedOrSwappedResultBesideAGenuineReceiptIsRefused() async throws {
        let files = try await genuineRuns()
        let path = files.path
        let fake = Array(#"{"columns":["merchant","n"],"rows":[["text:shop-fake","integer:999"]]}"#.utf8)
        let forged = try ResultEnvelope(
            sealing: fake,
            contract: files.contract,
            queryID: "count-by-merchant",
            recipients: ["analyst"]
        )
        try Data(forged.canonicalBytes).write(to: URL(fileURLWithPath: path("forged.json")))
        let verify = ["--contract", path("contract.json"), "--allow-simulated"]
        let open = ["--party", "analyst", "--key", path("analyst.x25519")]

        // Control: the genuine receipts verify.
        let receipt = try cli(["receipt", "verify", path("receipt1.json"), path("receipt2.json")] + verify)
        #expect(receipt.status == 0, "\(receipt.output)")

        // The forged envelope beside the genuine receipt.
        let withForged = try cli(
            ["result", "open", path("forged.json"), "--receipt", path("receipt2.json")] + open + verify
        )
        #expect(withForged.status == 1, "\(withForged.output)")
        #expect(withForged.output.contains("badResult"), "\(withForged.output)")
        #expect(!withForged.output.contains("shop-fake"), "\(withForged.output)")
        // An earlier run's genuine envelope beside the later receipt (a swap or a replay).
        let swapped = try cli(
            ["result", "open", path("result1.json"), "--receipt", path("receipt2.json")] + open + verify
        )
        #expect(swapped.status == 1, "\(swapped.output)")
        #expect(swapped.output.contains("badResult"), "\(swapped.output)")
        // Without a receipt, nothing is opened (a usage error naming --receipt).
        let bare = try cli(["result", "open", path("forged.json")] + open)
        #expect(bare.status == 64, "\(bare.output)")
        #expect(bare.output.contains("--receipt"), "\(bare.output)")
        #expect(!bare.output.contains("shop-fake"), "\(bare.output)")
        // The genuine result beside its own receipt opens.
        let genuine = try cli(
            ["result", "open", path("result2.json"), "--receipt", path("receipt2.json")] + open + verify
        )
        #expect(genuine.status == 0, "\(genuine.output)")
        #expect(genuine.output.contains("shop-big"), "\(genuine.output)")
    }

    /// F9: without --contract, `receipt verify` would accept the evidence of any non-debug enclave (its signer never
    /// compared): it refuses by name instead.
    @Test func receiptVerifyRequiresTheContract() async throws {
        let files = try await genuineRuns()
        let path = files.path
        let bare = try cli(["receipt", "verify", path("receipt1.json"), path("receipt2.json"), "--allow-simulated"])
        #expect(bare.status == 64, "\(bare.output)")
        #expect(bare.output.contains("--contract"), "\(bare.output)")
        let full = try cli(
            [
                "receipt", "verify", path("receipt1.json"), path("receipt2.json"), "--contract", path("contract.json"),
                "--allow-simulated",
            ]
        )
        #expect(full.status == 0, "\(full.output)")
        #expect(full.output.contains("receipt 1: contract \(files.contract.id.hex)"), "\(full.output)")
    }

    /// F7 (session 20): `receipt verify-halt` exits 1 (`badReceipt`) for the acknowledgement of a halt saved but not
    /// counted by a rollback counter (a restarted clean room could open as if never halted), and, with
    /// `--broker-key`, for a counter key other than the broker's.
    @Test func verifyHaltRefusesAHaltNotCountedOrCountedByAnotherKey() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let rollback = RollbackCounterTests()
        func write(_ bytes: [UInt8], _ name: String) throws -> String {
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
            return directory + "/" + name
        }
        // Counted: the room's counter key is the test counter's.
        let counter = TestCounter()
        let (room, contract, _) = try await rollback.firstLife(
            signed,
            directory: directory + "/counted",
            counter: counter
        )
        defer { Task { await room.close() } }
        let halt = try write(try rollback.durable.parties.halt(contract, by: "bank-b"), "halt.json")
        let countedAnswer = try await room.host.submitHalt(try Array(Data(contentsOf: URL(fileURLWithPath: halt))))
        let counted = try write(try #require(countedAnswer.acknowledgement, "no acknowledgement"), "counted.json")
        // Saved, not counted: a host with the state OCALLs and no counter.
        let uncountedRoom = try await DurableStateTests.start(signed, directory: directory + "/uncounted")
        defer { Task { await uncountedRoom.close() } }
        _ = try await uncountedRoom.host.submitContract(contract.canonicalBytes)
        for signature in try rollback.durable.parties.signatures(contract) {
            _ = try await uncountedRoom.host.submitSignature(signature)
        }
        let uncountedAnswer = try await uncountedRoom.host.submitHalt(
            try Array(Data(contentsOf: URL(fileURLWithPath: halt)))
        )
        let uncounted = try write(try #require(uncountedAnswer.acknowledgement, "no acknowledgement"), "uncounted.json")
        let contractPath = try write(contract.canonicalBytes, "contract.json")
        let brokerKey = try write(Array(counter.key.publicKey.pemRepresentation.utf8), "broker.pem")
        let otherKey = try write(Array(P256.Signing.PrivateKey().publicKey.pemRepresentation.utf8), "other.pem")
        func verify(_ acknowledgement: String, _ extra: [String] = []) throws -> (status: Int32, output: String) {
            try cli(
                [
                    "receipt", "verify-halt", acknowledgement, "--halt", halt, "--contract", contractPath,
                    "--allow-simulated",
                ]
                    + extra
            )
        }

        let ok = try verify(counted)
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains(", counted by the rollback counter"), "\(ok.output)")
        let pinned = try verify(counted, ["--broker-key", brokerKey])
        #expect(pinned.status == 0, "\(pinned.output)")
        let another = try verify(counted, ["--broker-key", otherKey])
        #expect(another.status == 1, "\(another.output)")
        #expect(another.output.contains("badReceipt"), "\(another.output)")
        #expect(another.output.contains("is not --broker-key"), "\(another.output)")

        let notCounted = try verify(uncounted)
        #expect(notCounted.status == 1, "\(notCounted.output)")
        #expect(notCounted.output.contains("badReceipt"), "\(notCounted.output)")
        #expect(notCounted.output.contains("not counted"), "\(notCounted.output)")
        let noCounterKey = try verify(uncounted, ["--broker-key", brokerKey])
        #expect(noCounterKey.status == 1, "\(noCounterKey.output)")
        #expect(noCounterKey.output.contains("binds no counterKey"), "\(noCounterKey.output)")
    }
}
