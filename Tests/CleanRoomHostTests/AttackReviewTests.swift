import Attestation
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
import TestSupport
import Testing

/// An attacker's review of the clean room's rollback counter and key release: a dishonest host tries to roll the
/// privacy budget back by choosing the counter the genuine clean room enclave trusts, and to reuse signed answers.
@Suite("Attack review: clean room rollback and key release", .serialized)
struct AttackReviewTests {
    let durable = DurableStateTests()

    /// How the dishonest host answers the enclave's counter OCALL.
    enum HostCounter: Sendable, CustomStringConvertible {
        /// No counter at all (`unknownCall`): the room keeps its state without rollback detection.
        case none
        /// A counter the host runs itself, signed with a key of its own; in the second life it answers one below the
        /// generation of the copy the host restores (which the host knows by counting the saves).
        case ownKey
        /// The key broker's counter (its decision and key, in this process), carried honestly.
        case broker

        var description: String {
            switch self {
            case .none: "no counter"
            case .ownKey: "the host's own counter key"
            case .broker: "the broker's counter"
            }
        }
    }

    /// How a rollback attempt ended.
    struct Outcome {
        /// The broker's refusal of the first release (nil: the key was released).
        var refusal: ServiceError?
        /// The refusal of the clean room at the second open (nil: it opened).
        var openRefusal: String?
        /// The ε (milli) the analyst got in the second life, beyond the budget.
        var extra: Int64 = 0
    }

    /// Run the genuine clean room enclave under `counter`, with the owner's key released by the real broker under the
    /// owners' contract policy at each open; spend 3 of 3.5 ε, restore the state saved after the first query and
    /// try again. The owner's policy names the broker's counter key when `pinCounter`.
    func rollBack(with counter: HostCounter, pinCounter: Bool) async throws -> Outcome {
        let services = try await KeyReleaseTests.services()
        defer { Task { await services.close() } }
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = durable.contract(signed)
        let dataKey = SymmetricKey(size: .bits256)
        let key = try services.importKey(
            dataKey.withUnsafeBytes { Array($0) },
            name: "bank-a-tx",
            policy: CleanRoomKeyRelease.releasePolicy(
                contract: contract,
                issuer: KeyReleaseTests.issuer,
                counterKey: pinCounter ? Array(services.broker.keyring.signingKey.publicKey.rawRepresentation) : nil
            )
        )
        let release = services.keyRelease(["bank-a-tx": key])
        let side = BrokerCounterTests.BrokerSide(broker: services.broker, document: contract.canonicalBytes)
        let own = TestCounter()
        func start() async throws -> DurableStateTests.Room {
            switch counter {
            case .none: return try await DurableStateTests.start(signed, directory: directory)
            case .ownKey:
                return try await RollbackCounterTests.start(signed, directory: directory, counter: own)
            case .broker:
                var table = CleanRoomHost.ocalls(directory: directory)
                CleanRoomStore.registerCounterCalls(&table, link: side.link())
                return try await DurableStateTests.start(signed, directory: directory, ocalls: table)
            }
        }
        /// The owner's key from the broker for the room's evidence, then the load; the broker's refusal if it refused.
        func releaseAndLoad(_ room: DurableStateTests.Room) async throws -> ServiceError? {
            let opened = try await room.host.attestation()
            let token = try await release.attest(opened.runtimeData, opened.evidence)
            side.token.withLock { $0 = token }
            let answer: String
            do {
                answer = try await release.release("bank-a-tx", nil, token)
            } catch let error as ServiceError where error.code == BrokerRefusal.Code.policyNotSatisfied {
                return error
            }
            _ = try await room.host.loadDataSet(
                name: "a_tx",
                wrappedKey: try CleanRoomKeyRelease.wrappedKey(fromReleaseAnswer: answer)
            )
            return nil
        }
        var csv = "card,merchant,amount\n"
        for index in 0..<40 { csv += "card-\(index % 10),shop-big,\(index)\n" }
        let file = try DataFileEncryptor.encrypt(
            Array(csv.utf8),
            dataKey: dataKey,
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        let path = try #require(CleanRoomStore.statePath(directory: directory, contractID: contract.id.hex))

        // First life: 3 of 3.5 ε spent; the host keeps a copy of the state saved after the first query.
        let first = try await start()
        defer { Task { await first.close() } }
        _ = try await first.host.submitContract(contract.canonicalBytes)
        for signature in try durable.parties.signatures(contract) {
            _ = try await first.host.submitSignature(signature)
        }
        _ = try await first.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try durable.parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        if let refusal = try await releaseAndLoad(first) { return Outcome(refusal: refusal) }
        _ = try await durable.run(first, contract)
        let older = try #require(FileManager.default.contents(atPath: path))
        let olderGeneration = own.value
        _ = try await durable.run(first, contract)
        _ = try await durable.run(first, contract)
        #expect(await DurableStateTests.refusal { _ = try await durable.run(first, contract) } == "budgetExhausted")
        await first.close()

        // Second life: the older state back in place, a counter that agrees with it.
        try older.write(to: URL(fileURLWithPath: path))
        own.state.withLock { $0 = .init(value: olderGeneration > 0 ? olderGeneration - 1 : 0) }
        let second = try await start()
        defer { Task { await second.close() } }
        if let refusal = await second.host.enclaveStatus().refusal { return Outcome(openRefusal: refusal) }
        if let refusal = try await releaseAndLoad(second) { return Outcome(refusal: refusal) }
        var outcome = Outcome()
        while outcome.extra < 3000, let receipt = try? await durable.run(second, contract) {
            outcome.extra += receipt.epsilonSpentMilli
        }
        await second.close()
        return outcome
    }

    /// Control for the next test: the counter key in the clean room's runtime data is whatever the untrusted host
    /// answers to the `key` counter OCALL (or absent when the host has no counter). A policy written with
    /// `counterKey: nil` (an explicit opt-out; `enclave cleanroom encrypt` always pins the broker's key) releases the
    /// owners' keys to such a room, and the host rolls the privacy budget back at a restart. This shows the attack is
    /// real, so the refusals in the next test are the pin's doing.
    @Test(
        "Control: with an unpinned policy a host-run counter does roll the privacy budget back",
        arguments: [HostCounter.none, .ownKey]
    )
    func anUnpinnedPolicyLetsAHostChosenCounterRollTheBudgetBack(counter: HostCounter) async throws {
        let outcome = try await rollBack(with: counter, pinCounter: false)
        #expect(outcome.extra > 0, "with \(counter) the rollback was not reproduced: \(String(describing: outcome))")
    }

    /// The fix: the owners' policy names the broker's counter key. A room with no counter or the host's own is
    /// refused the key by the broker (on `x-ms-runtime.counterKey`); the room counted by the broker gets it, and the
    /// older state restored is then refused at open (rollback).
    @Test(
        "A policy naming the broker's counter key releases only to a room the broker counts",
        arguments: [HostCounter.none, .ownKey, .broker]
    )
    func aPolicyNamingTheBrokersCounterKeyStopsTheRollback(counter: HostCounter) async throws {
        let outcome = try await rollBack(with: counter, pinCounter: true)
        #expect(outcome.extra == 0, "with \(counter) the analyst got \(outcome.extra) milli-ε beyond the budget")
        switch counter {
        case .none, .ownKey:
            #expect(outcome.refusal?.code == BrokerRefusal.Code.policyNotSatisfied, "\(String(describing: outcome))")
            #expect(
                outcome.refusal?.message.contains("x-ms-runtime.counterKey") == true,
                "\(String(describing: outcome))"
            )
        case .broker:
            #expect(outcome.refusal == nil, "\(String(describing: outcome))")
            #expect(outcome.openRefusal?.hasPrefix("rollback:") == true, "\(String(describing: outcome))")
        }
    }

    /// F1: a halt survives an enclave restart. bank-a halts the contract; the host kills the enclave, launches a fresh
    /// one over the same saved state and the broker's counter, and opens it with every signature and no halt (the host
    /// chooses which halts it passes). The saved state says halted: the open is refused (no evidence, so no key is
    /// released) and nothing loads or runs.
    @Test func aHaltSurvivesARestartWhateverHaltsTheHostPasses() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let rollback = RollbackCounterTests()
        let (first, contract, _) = try await rollback.firstLife(signed, directory: directory, counter: counter)
        defer { Task { await first.close() } }
        _ = try await rollback.durable.run(first, contract)
        let halt = try rollback.durable.parties.halt(contract, by: "bank-a", reason: "consent withdrawn")
        _ = try await first.host.submitHalt(halt)
        #expect(
            await DurableStateTests.refusal { _ = try await rollback.durable.run(first, contract) } == "halted"
        )
        await first.close()

        // Second life: a fresh enclave over the same state and counter, opened by the host with no halt.
        let second = try await RollbackCounterTests.start(signed, directory: directory, counter: counter)
        defer { Task { await second.close() } }
        let request = CleanRoomOpenRequest(
            contract: contract.canonicalBytes,
            signatures: try rollback.durable.parties.signatures(contract),
            halts: []
        )
        do {
            _ = try await second.enclave.call(CleanRoomOpen.self, request)
            Issue.record("a fresh enclave opened under the halted contract (the host passed no halt)")
        } catch let error as EnclaveError {
            #expect(error.reason.hasPrefix("halted:"), "\(error.reason)")
            #expect(error.reason.contains("bank-a"), "\(error.reason)")
        }
        let status = try await second.enclave.call(CleanRoomStatus.self, Empty())
        #expect(status.phase == .halted, "\(status)")
        #expect(status.halts == [.init(party: "bank-a", reason: "consent withdrawn")], "\(status)")
        // Asked again (the host retries), still refused.
        do {
            _ = try await second.enclave.call(CleanRoomOpen.self, request)
            Issue.record("the second open under the halted contract succeeded")
        } catch let error as EnclaveError {
            #expect(error.reason.hasPrefix("halted:"), "\(error.reason)")
        }
    }

    /// F1: the enclave acknowledges a halt with a statement signed by its receipt key (bound in its evidence), once
    /// the halt is saved and counted: the party knows its halt landed. A host that never delivers a halt is caught
    /// only by the missing acknowledgement.
    @Test func aHaltIsAcknowledgedOnceItIsSavedAndCounted() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let counter = TestCounter()
        let rollback = RollbackCounterTests()
        let (room, contract, _) = try await rollback.firstLife(signed, directory: directory, counter: counter)
        defer { Task { await room.close() } }
        let before = counter.value
        let halt = try rollback.durable.parties.halt(contract, by: "bank-b")
        let answer = try await room.host.submitHalt(halt)
        let bytes = try #require(answer.acknowledgement, "no acknowledgement")
        let acknowledgement = try HaltAcknowledgement(canonicalBytes: bytes)
        #expect(acknowledgement.contractID == contract.id)
        #expect(acknowledgement.party == "bank-b")
        #expect(acknowledgement.halt == HaltAcknowledgement.digest(ofHalt: halt))
        #expect(acknowledgement.durable)
        #expect(acknowledgement.counted)
        #expect(counter.value == before + 1, "the halt was not counted")
        #expect(acknowledgement.generation == counter.value)
        let bound = try acknowledgement.boundEvidence()
        let quote = try DCAPQuote(bytes: bound.evidence.bytes)
        let key = try acknowledgement.attestedKey(reportData: quote.reportData, runtimeData: bound.runtimeData)
        try acknowledgement.verify(key: key, halt: halt, contract: contract)
        // Another halt statement, or the same acknowledgement's bytes changed, does not verify.
        let other = try rollback.durable.parties.halt(contract, by: "bank-b", reason: "other")
        let refused = #expect(throws: CleanRoomError.self) {
            try acknowledgement.verify(key: key, halt: other, contract: contract)
        }
        #expect(refused?.code == .badReceipt, "\(String(describing: refused))")
        var changed = acknowledgement
        changed.generation += 1
        let forged = #expect(throws: CleanRoomError.self) {
            try changed.verify(key: key, halt: halt, contract: contract)
        }
        #expect(forged?.code == .badReceipt, "\(String(describing: forged))")
    }

    /// The broker moves a counter only for a token whose runtime data names its own key as `counterKey` and the
    /// contract: a token of the genuine clean room opened with the host's counter key is refused, and a signed answer
    /// for one contract does not verify as another's (the signed message names the contract and the nonce).
    @Test func theBrokerRefusesACounterTokenNamingAnotherKeyAndItsAnswersAreBound() async throws {
        let services = try await KeyReleaseTests.services()
        defer { Task { await services.close() } }
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = durable.contract(signed)
        let room = try await RollbackCounterTests.start(signed, directory: directory, counter: TestCounter())
        defer { Task { await room.close() } }
        _ = try await room.host.submitContract(contract.canonicalBytes)
        for signature in try durable.parties.signatures(contract) { _ = try await room.host.submitSignature(signature) }
        let opened = try await room.host.attestation()
        let token = try await services.core.attest(
            type: .simulatedEnclave,
            request: .init(evidence: opened.evidence.bytes, runtimeData: (opened.runtimeData, true))
        )
        func increment(contract id: String, expected: UInt64 = 0) throws -> BrokerCounterResponse {
            try services.broker.counter(
                BrokerCounterRequest(
                    token: token,
                    operation: "increment",
                    contract: id,
                    nonce: String(repeating: "ab", count: 16),
                    expected: expected,
                    state: String(repeating: "cd", count: 32),
                    current: nil,
                    contractDocument: contract.canonicalBytes
                ),
                now: Date()
            )
        }
        let refused = #expect(throws: KeyBrokerError.self) { _ = try increment(contract: contract.id.hex) }
        #expect(refused?.code == "CounterNotAllowed", "\(String(describing: refused))")
        #expect(refused?.reason.contains("counterKey") == true, "\(String(describing: refused))")
        // The contract ID in upper case is not the contract (the broker takes lower-case hex only).
        let upper = #expect(throws: KeyBrokerError.self) { _ = try increment(contract: contract.id.hex.uppercased()) }
        #expect(upper?.code == "BadParameter", "\(String(describing: upper))")

        // A read answer (no token needed) is bound to its contract and nonce.
        let nonce = String(repeating: "0f", count: 16)
        let read = try services.broker.counter(
            BrokerCounterRequest(
                token: "",
                operation: "read",
                contract: contract.id.hex,
                nonce: nonce,
                expected: 0,
                state: "",
                current: BrokerCounterRecord(value: 5, state: String(repeating: "ee", count: 32))
            ),
            now: Date()
        )
        let key = services.broker.keyring.signingKey.publicKey
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: read.signature)
        func verifies(contract id: String, value: UInt64, nonce: String) -> Bool {
            let message = CleanRoomCounterRequest.message(
                contractID: id,
                value: value,
                state: read.record.state,
                nonce: nonce
            )
            return key.isValidSignature(signature, for: message)
        }
        #expect(verifies(contract: contract.id.hex, value: 5, nonce: nonce))
        #expect(!verifies(contract: String(repeating: "ef", count: 32), value: 5, nonce: nonce), "another contract")
        #expect(!verifies(contract: contract.id.hex, value: 4, nonce: nonce), "another value")
        #expect(!verifies(contract: contract.id.hex, value: 5, nonce: String(repeating: "1e", count: 16)), "replay")
    }

    /// `?key=` names another owner's key: bank-b's key, released to the clean room under the same contract, is used to
    /// load bank-a's data set. The enclave gets the key but bank-a's file does not open with it: nothing loads, and
    /// bank-b's key alone never reads bank-a's rows.
    @Test func anotherOwnersKeyDoesNotLoadAnOwnersDataSet() async throws {
        let services = try await KeyReleaseTests.services()
        let keysBox = KeysBox()
        let harness = try await CleanRoomHostRoutesTests.harness(keyRelease: keysBox.release(services))
        defer {
            Task {
                await harness.close()
                await services.close()
            }
        }
        let parties = Parties()
        let contract = parties.contract(enclave: harness.fixture.requirement)
        let keyA = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let keyB = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let policy = CleanRoomKeyRelease.releasePolicy(
            contract: contract,
            issuer: KeyReleaseTests.issuer,
            counterKey: nil
        )
        keysBox.set([
            "bank-a-tx": try services.importKey(keyA, name: "bank-a-tx", policy: policy),
            "bank-b-tx": try services.importKey(keyB, name: "bank-b-tx", policy: policy),
        ])
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await harness.host.submitSignature(signature) }
        let file = try KeyReleaseTests.dataFile(keyA, contract: contract)
        _ = try await harness.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await harness.host.loadDataSet(name: "a_tx", brokerKey: "bank-b-tx", version: nil)
        }
        #expect(refused?.code == "dataTampered", "\(String(describing: refused))")
        #expect(try await HostStatus.of(harness.host).dataSets.first { $0.name == "a_tx" }?.rows == nil)
        // The owner's own key loads it (control: the refusal was the key's).
        let report = try await harness.host.loadDataSet(name: "a_tx", brokerKey: "bank-a-tx", version: nil)
        #expect(report.rows == 300)
    }

    /// An owner's upload signature does not carry over to another spelling of the data set's name (case, a trailing
    /// space or NUL, full-width letters, a decomposed accent) nor to a contract one byte away.
    @Test func anUploadSignatureHoldsOnlyForTheExactNameAndContract() throws {
        let parties = Parties()
        let requirement = Contract.EnclaveRequirement(
            signerID: try Digest32(bytes: [UInt8](repeating: 0x33, count: 32)),
            productID: 1,
            minSecurityVersion: 1
        )
        let contract = parties.contract(enclave: requirement)
        let file = [UInt8](repeating: 0xA5, count: 100)
        let sha = SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined()
        let signature = try parties.uploadSignature(file, dataSet: "a_tx", contract: contract)
        try DataSetUploadSigning.verify(signature, contract: contract, dataSet: "a_tx", sha256: sha)
        for name in ["A_TX", "a_tx ", "a_tx\u{0}", "\u{FF41}_tx", "b_tx", "a_t\u{0078}\u{0301}"] {
            let refused = #expect(throws: CleanRoomError.self, "\(name.unicodeScalars.map(\.value))") {
                try DataSetUploadSigning.verify(signature, contract: contract, dataSet: name, sha256: sha)
            }
            #expect(refused?.code == .uploadSignature, "\(String(describing: refused))")
        }
        // The digest in upper case is another message.
        let upper = #expect(throws: CleanRoomError.self) {
            try DataSetUploadSigning.verify(signature, contract: contract, dataSet: "a_tx", sha256: sha.uppercased())
        }
        #expect(upper?.code == .uploadSignature)
        var near = parties
        near.name = "shared fraud patternz"
        let other = near.contract(enclave: requirement)
        let moved = #expect(throws: CleanRoomError.self) {
            try DataSetUploadSigning.verify(signature, contract: other, dataSet: "a_tx", sha256: sha)
        }
        #expect(moved?.code == .uploadSignature)
    }
}
