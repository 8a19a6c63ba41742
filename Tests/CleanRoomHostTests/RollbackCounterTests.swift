import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBroker
import KeyBrokerInterface
import Synchronization
import TestSupport
import Testing

/// A rollback counter the way the key broker answers it (signed with its key over the contract, value, state
/// digest and the enclave's nonce), with switches that play a dishonest host or broker.
final class TestCounter: Sendable {
    enum Mode: Sendable {
        case honest
        /// Answers signed by another key than the one announced.
        case forge
        /// Every read answers the first read's answer again (a valid signature over an old nonce).
        case replay
        /// Increments are refused (the enclave stops between saving and counting).
        case refuseIncrements
    }

    struct State {
        var value: UInt64 = 0
        var digest = ""
        var mode = Mode.honest
        var firstRead: CleanRoomCounterAnswer?
    }

    let key = P256.Signing.PrivateKey()
    let state = Mutex(State())

    var value: UInt64 { state.withLock { $0.value } }
    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    func answer(_ request: CleanRoomCounterRequest) throws -> CleanRoomCounterAnswer {
        try state.withLock { state throws -> CleanRoomCounterAnswer in
            if request.operation == "key" {
                return .init(value: 0, state: "", nonce: "", signature: [], key: Array(key.publicKey.rawRepresentation))
            }
            if request.operation == "increment" {
                guard state.mode != .refuseIncrements else { throw EnclaveError.unavailable("the broker is down") }
                guard request.expected == state.value else {
                    throw EnclaveError.callFailed("counterConflict: the counter is at \(state.value)")
                }
                state.value += 1
                state.digest = request.state
            }
            let signer = state.mode == .forge ? P256.Signing.PrivateKey() : key
            let message = CleanRoomCounterRequest.message(
                contractID: request.contractID,
                value: state.value,
                state: state.digest,
                nonce: request.nonce
            )
            let answer = CleanRoomCounterAnswer(
                value: state.value,
                state: state.digest,
                nonce: request.nonce,
                signature: Array(try signer.signature(for: message).rawRepresentation)
            )
            if request.operation == "read" {
                if state.mode == .replay, let first = state.firstRead { return first }
                if state.firstRead == nil { state.firstRead = answer }
            }
            return answer
        }
    }
}

/// Rollback detection: the enclave's durable state is counted by the key broker's monotonic counter (per
/// contract), whose answers the enclave verifies with the broker's key (bound in its evidence) and its own fresh
/// nonce. Restoring an older sealed state is refused, and so are forged and replayed counter answers; a stop between
/// saving and counting is recovered without losing spent budget.
@Suite("Clean room rollback counter", .serialized)
struct RollbackCounterTests {
    let parties = Parties()
    let durable = DurableStateTests()

    /// A host and a fresh enclave process over `directory`, with `counter` as the broker's counter.
    static func start(
        _ signed: Fixtures.Signed,
        directory: String,
        counter: TestCounter
    ) async throws
        -> DurableStateTests.Room
    {
        var table = CleanRoomHost.ocalls(directory: directory)
        table.register(CleanRoomCounter.self) { request in try counter.answer(request) }
        return try await DurableStateTests.start(signed, directory: directory, ocalls: table)
    }

    /// The first life: the contract signed, a_tx uploaded and loaded; answers the data key for later lives.
    func firstLife(
        _ signed: Fixtures.Signed,
        directory: String,
        counter: TestCounter
    ) async throws -> (DurableStateTests.Room, Contract, SymmetricKey) {
        let contract = durable.contract(signed)
        let room = try await Self.start(signed, directory: directory, counter: counter)
        do {
            _ = try await room.host.submitContract(contract.canonicalBytes)
            for signature in try durable.parties.signatures(contract) {
                _ = try await room.host.submitSignature(signature)
            }
            let dataKey = try await durable.load(room, contract)
            return (room, contract, dataKey)
        } catch {
            await room.close()
            throw error
        }
    }

    func reload(_ room: DurableStateTests.Room, dataKey: SymmetricKey) async throws {
        let opened = try await room.host.attestation()
        _ = try await room.host.loadDataSet(
            name: "a_tx",
            wrappedKey: try DataSetLoadTests.wrap(dataKey.withUnsafeBytes { Array($0) }, for: opened)
        )
    }

    @Test func theEvidenceBindsTheCounterKey() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let (room, _, _) = try await firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        struct Runtime: Decodable {
            struct JWK: Decodable {
                let x: String
                let y: String
            }
            let counterKey: JWK
            let counterRequestKey: JWK
            let receiptKey: JWK
        }
        let opened = try await room.host.attestation()
        let runtime = try JSONDecoder().decode(Runtime.self, from: Data(opened.runtimeData))
        let raw = Array(counter.key.publicKey.rawRepresentation)
        #expect(Base64URL.decode(runtime.counterKey.x) == Array(raw.prefix(32)))
        #expect(Base64URL.decode(runtime.counterKey.y) == Array(raw.suffix(32)))
        // The key the enclave signs its increments with: a P-256 key of its own, not the receipt key (which signs
        // receipts and halt acknowledgements) nor the broker's.
        let request = try #require(
            Base64URL.decode(runtime.counterRequestKey.x).flatMap { x in
                Base64URL.decode(runtime.counterRequestKey.y).map { x + $0 }
            }
        )
        #expect((try? P256.Signing.PublicKey(rawRepresentation: request)) != nil)
        #expect(runtime.counterRequestKey.x != runtime.receiptKey.x)
        #expect(request != raw)
    }

    @Test func restoringAnOlderSealedLedgerAfterADPQueryIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let (room, contract, _) = try await firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        let path = try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))
        #expect(counter.value == 1, "the load's upload version is counted")
        _ = try await durable.run(room, contract)
        let older = try #require(FileManager.default.contents(atPath: path))
        _ = try await durable.run(room, contract)
        #expect(counter.value == 3)
        await room.close()

        // The host restores the copy saved after the first DP query (1 ε spent instead of 2).
        try older.write(to: URL(fileURLWithPath: path))
        let second = try await Self.start(signed, directory: directory, counter: counter)
        defer { Task { await second.close() } }
        let refusal = await second.host.enclaveStatus().refusal
        #expect(refusal?.hasPrefix("rollback:") == true, "\(refusal ?? "no refusal")")
        #expect(await DurableStateTests.refusal { _ = try await second.host.attestation() } == "NotOpen")
    }

    @Test func aMissingSavedStateIsARollbackToo() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let (room, contract, _) = try await firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        _ = try await durable.run(room, contract)
        await room.close()
        try FileManager.default.removeItem(
            atPath: try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))
        )
        let second = try await Self.start(signed, directory: directory, counter: counter)
        defer { Task { await second.close() } }
        let refusal = await second.host.enclaveStatus().refusal
        #expect(refusal?.hasPrefix("rollback:") == true, "\(refusal ?? "no refusal")")
    }

    @Test func aForgedCounterAnswerIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let (room, contract, dataKey) = try await firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        _ = try await durable.run(room, contract)
        // An increment answered with another key's signature: the result is withheld.
        counter.set(.forge)
        #expect(await DurableStateTests.refusal { _ = try await durable.run(room, contract) } == "counterForged")
        await room.close()
        // A read answered with another key's signature: the room does not open.
        let second = try await Self.start(signed, directory: directory, counter: counter)
        defer { Task { await second.close() } }
        let refusal = await second.host.enclaveStatus().refusal
        #expect(refusal?.hasPrefix("counterForged:") == true, "\(refusal ?? "no refusal")")
        _ = dataKey
    }

    @Test func aReplayedCounterAnswerIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        // The first read (value 0, at the first open) is recorded; then a DP query moves the counter to 1.
        let (room, contract, _) = try await firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        _ = try await durable.run(room, contract)
        await room.close()
        // The host answers the old read again (value 0, validly signed, but for an old nonce) with the state file
        // removed, hoping the enclave starts afresh.
        try FileManager.default.removeItem(
            atPath: try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))
        )
        counter.set(.replay)
        let second = try await Self.start(signed, directory: directory, counter: counter)
        defer { Task { await second.close() } }
        let refusal = await second.host.enclaveStatus().refusal
        #expect(refusal?.hasPrefix("counterReplay:") == true, "\(refusal ?? "no refusal")")
    }

    @Test func aStopBetweenSavingAndCountingRecoversWithTheBudgetStillSpent() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let (room, contract, dataKey) = try await firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        _ = try await durable.run(room, contract)
        // The load (its upload version) and the first run were counted.
        #expect(counter.value == 2)
        // The state of the second run is saved, its increment fails: the result is withheld.
        counter.set(.refuseIncrements)
        #expect(await DurableStateTests.refusal { _ = try await durable.run(room, contract) } == "rollbackCounter")
        #expect(counter.value == 2)
        await room.close()

        // Restart: the saved state is one ahead of the counter; the enclave opens with it as the counter's
        // generation, and the next save replaces it and counts.
        counter.set(.honest)
        let second = try await Self.start(signed, directory: directory, counter: counter)
        defer { Task { await second.close() } }
        #expect(await second.host.enclaveStatus().refusal == nil)
        #expect(counter.value == 2)
        try await reload(second, dataKey: dataKey)
        // The withheld run's ε stays spent (3 of 3.5 after this one): the next DP query is refused.
        let third = try await durable.run(second, contract)
        #expect(third.epsilonSpentMilli == 1000)
        #expect(counter.value == 3)
        #expect(await DurableStateTests.refusal { _ = try await durable.run(second, contract) } == "budgetExhausted")
    }
}

/// The counter held by a real key broker (its decision and signature, in this process) with tokens of a real
/// attestation service for the clean room's evidence.
@Suite("Clean room rollback counter in the key broker", .serialized)
struct BrokerCounterTests {
    let durable = DurableStateTests()

    /// The counter OCALL as a host would serve it: the broker's key, reads, and increments carrying `token`.
    final class BrokerSide: Sendable {
        let broker: KeyBroker
        let record = Mutex<BrokerCounterRecord?>(nil)
        let token = Mutex("")
        /// The contract's canonical bytes, carried with each increment (the broker reads the allowed enclave there).
        let document: [UInt8]?

        init(broker: KeyBroker, document: [UInt8]?) {
            self.broker = broker
            self.document = document
        }

        /// The host's link to this broker side, as `CleanRoomStore.registerCounterCalls` takes it; `beforeIncrement`
        /// runs first on each increment (e.g. fetching a fresh token, as the CLI's link does).
        func link(beforeIncrement: @escaping @Sendable () async throws -> Void = {}) -> CleanRoomCounterLink {
            CleanRoomCounterLink(
                brokerKey: { Array(self.broker.keyring.signingKey.publicKey.rawRepresentation) },
                read: { contract, nonce in
                    try self.answer(.init(operation: "read", contractID: contract, nonce: nonce))
                },
                increment: { contract, nonce, expected, state, signature in
                    try await beforeIncrement()
                    return try self.answer(
                        .init(
                            operation: "increment",
                            contractID: contract,
                            nonce: nonce,
                            expected: expected,
                            state: state,
                            requestSignature: signature
                        )
                    )
                }
            )
        }

        func answer(_ request: CleanRoomCounterRequest) throws -> CleanRoomCounterAnswer {
            if request.operation == "key" {
                return .init(
                    value: 0,
                    state: "",
                    nonce: "",
                    signature: [],
                    key: Array(broker.keyring.signingKey.publicKey.rawRepresentation)
                )
            }
            let response: BrokerCounterResponse
            do {
                response = try broker.counter(
                    BrokerCounterRequest(
                        token: token.withLock { $0 },
                        operation: request.operation,
                        contract: request.contractID,
                        nonce: request.nonce,
                        expected: request.expected,
                        state: request.state,
                        current: record.withLock { $0 },
                        contractDocument: document,
                        requestSignature: request.requestSignature
                    ),
                    now: Date()
                )
            } catch {
                throw EnclaveError.callFailed("\(error.code): \(error.reason)")
            }
            if request.operation == "increment" { record.withLock { $0 = response.record } }
            return .init(
                value: response.record.value,
                state: response.record.state,
                nonce: response.nonce,
                signature: response.signature
            )
        }
    }

    /// Attack review F1 (session 20), end to end: after a run, anyone with network access takes the clean room's
    /// published runtime data and evidence (`GET /attestation`), gets a genuine token of the contract's enclave from
    /// the attestation service and asks the broker to move the counter from its current value with a state digest of
    /// their own. Without the enclave's signature over that request the broker refuses (`CounterNotAllowed`), so the
    /// next query still runs and a restarted enclave still restores.
    @Test func aReplayOfThePublishedEvidenceDoesNotBrickTheRoom() async throws {
        let services = try await KeyReleaseTests.services()
        defer { Task { await services.close() } }
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = durable.contract(signed)
        let side = BrokerSide(broker: services.broker, document: contract.canonicalBytes)
        var table = CleanRoomHost.ocalls(directory: directory)
        CleanRoomStore.registerCounterCalls(&table, link: side.link())
        func token(_ room: DurableStateTests.Room) async throws -> String {
            let opened = try await room.host.attestation()
            return try await services.core.attest(
                type: .simulatedEnclave,
                request: .init(evidence: opened.evidence.bytes, runtimeData: (opened.runtimeData, true))
            )
        }
        let room = try await DurableStateTests.start(signed, directory: directory, ocalls: table)
        defer { Task { await room.close() } }
        _ = try await room.host.submitContract(contract.canonicalBytes)
        for signature in try durable.parties.signatures(contract) {
            _ = try await room.host.submitSignature(signature)
        }
        let honest = try await token(room)
        side.token.withLock { $0 = honest }
        let dataKey = try await durable.load(room, contract)
        _ = try await durable.run(room, contract)
        let value = try #require(side.record.withLock { $0?.value })
        #expect(value == 2)

        // The attacker: the published runtime data and evidence, a genuine token for them, an increment from the
        // current value with a garbage digest and the contract's (public) bytes.
        let replayed = try await token(room)
        do {
            let moved = try services.broker.counter(
                BrokerCounterRequest(
                    token: replayed,
                    operation: "increment",
                    contract: contract.id.hex,
                    nonce: String(repeating: "ab", count: 16),
                    expected: value,
                    state: String(repeating: "ab", count: 32),
                    current: side.record.withLock { $0 },
                    contractDocument: contract.canonicalBytes
                ),
                now: Date()
            )
            // The broker's host would store it (compare-and-swap from `value`).
            side.record.withLock { $0 = moved.record }
            Issue.record("a replayed token moved the counter to \(moved.record.value)")
        } catch {
            #expect(error.code == "CounterNotAllowed", "\(error)")
        }
        #expect(side.record.withLock { $0?.value } == value)

        // The next query still runs and is counted; a restarted enclave still restores and runs.
        let next = try await durable.run(room, contract)
        #expect(next.epsilonSpentMilli == 1000)
        #expect(side.record.withLock { $0?.value } == value + 1)
        await room.close()
        let second = try await DurableStateTests.start(signed, directory: directory, ocalls: table)
        defer { Task { await second.close() } }
        #expect(await second.host.enclaveStatus().refusal == nil)
        let restarted = try await token(second)
        side.token.withLock { $0 = restarted }
        _ = try await second.host.loadDataSet(
            name: "a_tx",
            wrappedKey: try DataSetLoadTests.wrap(
                dataKey.withUnsafeBytes { Array($0) },
                for: try await second.host.attestation()
            )
        )
        let third = try await durable.run(second, contract)
        #expect(third.epsilonSpentMilli == 1000)
        #expect(side.record.withLock { $0?.value } == value + 2)
    }

    @Test func theBrokerCountsOnlyTheContractsCleanRoomAndSignsItsAnswers() async throws {
        let services = try await KeyReleaseTests.services()
        defer { Task { await services.close() } }
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = durable.contract(signed)
        let side = BrokerSide(broker: services.broker, document: contract.canonicalBytes)
        var table = CleanRoomHost.ocalls(directory: directory)
        // The host's link to the broker (here the broker's decision in this process rather than over HTTP).
        CleanRoomStore.registerCounterCalls(&table, link: side.link())
        let room = try await DurableStateTests.start(signed, directory: directory, ocalls: table)
        defer { Task { await room.close() } }
        _ = try await room.host.submitContract(contract.canonicalBytes)
        for signature in try durable.parties.signatures(contract) {
            _ = try await room.host.submitSignature(signature)
        }
        // Without the clean room's token the broker does not move the counter: the load (whose upload version is
        // counted before its rows load) is refused, as a run's result would be withheld.
        #expect(await DurableStateTests.refusal { _ = try await durable.load(room, contract) } == "rollbackCounter")
        #expect(side.record.withLock { $0 } == nil)

        // With the token the attestation service issued for the clean room's evidence (x-ms-runtime names the
        // contract and this broker's key as counterKey), it does.
        let opened = try await room.host.attestation()
        let token = try await services.core.attest(
            type: .simulatedEnclave,
            request: .init(evidence: opened.evidence.bytes, runtimeData: (opened.runtimeData, true))
        )
        side.token.withLock { $0 = token }
        try await durable.load(room, contract)
        #expect(side.record.withLock { $0?.value } == 1)
        let receipt = try await durable.run(room, contract)
        #expect(receipt.epsilonSpentMilli == 1000)
        #expect(side.record.withLock { $0?.value } == 2)

        // The broker refuses an increment carrying the clean room's token but not the enclave's signature (the token
        // and the contract are public: anyone can ask for them).
        let unsigned = #expect(throws: KeyBrokerError.self) {
            _ = try services.broker.counter(
                BrokerCounterRequest(
                    token: token,
                    operation: "increment",
                    contract: contract.id.hex,
                    nonce: String(repeating: "ab", count: 16),
                    expected: 1,
                    state: String(repeating: "cd", count: 32),
                    current: side.record.withLock { $0 },
                    contractDocument: contract.canonicalBytes
                ),
                now: Date()
            )
        }
        // And an increment for another contract with this token.
        #expect(unsigned?.code == "CounterNotAllowed", "\(String(describing: unsigned))")
        #expect(unsigned?.reason.contains("no signature") == true, "\(String(describing: unsigned))")
        let notAllowed = #expect(throws: KeyBrokerError.self) {
            _ = try services.broker.counter(
                BrokerCounterRequest(
                    token: token,
                    operation: "increment",
                    contract: String(repeating: "ef", count: 32),
                    nonce: String(repeating: "ab", count: 16),
                    expected: 0,
                    state: String(repeating: "cd", count: 32),
                    current: nil
                ),
                now: Date()
            )
        }
        #expect(notAllowed?.code == "CounterNotAllowed")
        // The message the broker signs is the one the clean room enclave verifies.
        #expect(
            BrokerCounterRequest.message(contract: "c", value: 7, state: "s", nonce: "n")
                == CleanRoomCounterRequest.message(contractID: "c", value: 7, state: "s", nonce: "n")
        )
        // And the increment the enclave signs is the one the broker verifies; its fields can't run into each other.
        #expect(
            BrokerCounterRequest.incrementMessage(contract: "c", expected: 7, state: "s", nonce: "n")
                == CleanRoomCounterRequest.incrementMessage(contractID: "c", expected: 7, state: "s", nonce: "n")
        )
        #expect(
            BrokerCounterRequest.incrementMessage(contract: "c", expected: 7, state: "sn", nonce: "")
                != BrokerCounterRequest.incrementMessage(contract: "c", expected: 7, state: "s", nonce: "n")
        )
        #expect(
            BrokerCounterRequest.incrementMessage(contract: "c", expected: 7, state: "s", nonce: "n")
                != BrokerCounterRequest.incrementMessage(contract: "c", expected: 8, state: "s", nonce: "n")
        )
    }
}
