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

/// The owners' release policy requires the clean room's rollback counter to be the key broker's: the untrusted host
/// chooses which counter the enclave gets (none, or one it answers itself with its own key, so that it could roll
/// the privacy budget back at a restart), and the broker releases the owners' keys only to a room whose evidence binds
/// the broker's own signing key as `x-ms-runtime.counterKey`. Through the host's own key release
/// (``CleanRoomHost/loadDataSet(name:brokerKey:version:)``) and its counter increments with
/// ``CleanRoomHost/counterToken()``, as `enclave cleanroom serve` wires them.
@Suite("Clean room counter wiring and the owners' counter key policy", .serialized)
struct CounterWiringTests {
    let durable = DurableStateTests()

    enum HostCounter: String, Sendable, CustomStringConvertible {
        case none, ownKey, broker
        var description: String { rawValue }
    }

    /// The host once it exists, for increments (the link is registered before the enclave loads).
    final class HostBox: Sendable {
        let host = Mutex<CleanRoomHost?>(nil)

        func token() async throws -> String {
            guard let host = host.withLock({ $0 }) else { throw EnclaveError.callFailed("no host yet") }
            return try await host.counterToken()
        }
    }

    /// A host with the services' key release over a fresh enclave whose counter OCALL is `counter`.
    static func start(
        _ signed: Fixtures.Signed,
        directory: String,
        counter: HostCounter,
        services: KeyReleaseTests.Services,
        release: CleanRoomKeyRelease,
        side: BrokerCounterTests.BrokerSide
    ) async throws -> DurableStateTests.Room {
        var table = CleanRoomHost.ocalls(directory: directory)
        let box = HostBox()
        switch counter {
        case .none: break
        case .ownKey:
            let own = TestCounter()
            table.register(CleanRoomCounter.self) { request in try own.answer(request) }
        case .broker:
            // As the CLI's link: a fresh token of the clean room from the host for each increment.
            let link = side.link {
                let token = try await box.token()
                side.token.withLock { $0 = token }
            }
            CleanRoomStore.registerCounterCalls(&table, link: link)
        }
        let store = try await CleanRoomStore.open(directory: directory)
        var options = Enclave.Options()
        options.ocalls = table
        options.platform = try SimulatedPlatform.open(directory: Fixtures.platformDirectory)
        options.evidenceSource = .simulated
        options.signaturePath = signed.signature
        options.startTimeout = .seconds(120)  // generous: a loaded CI machine starts enclaves slowly
        let enclave: Enclave
        do { enclave = try await Enclave.load(path: signed.image, options: options) } catch {
            try? await store.close()
            throw error
        }
        do {
            let host = try await CleanRoomHost(store: store, enclave: enclave, keyRelease: release)
            box.host.withLock { $0 = host }
            return DurableStateTests.Room(host: host, store: store, enclave: enclave)
        } catch {
            try? await store.close()
            await enclave.terminate()
            throw error
        }
    }

    @Test(
        "The owners' key goes only to a clean room counted by the broker's own key",
        arguments: [HostCounter.none, .ownKey, .broker]
    )
    func theOwnersKeyNeedsTheBrokersCounter(counter: HostCounter) async throws {
        let services = try await KeyReleaseTests.services()
        defer { Task { await services.close() } }
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let contract = durable.contract(signed)
        let dataKey = SymmetricKey(size: .bits256)
        let raw = dataKey.withUnsafeBytes { Array($0) }
        let brokerKey = Array(services.broker.keyring.signingKey.publicKey.rawRepresentation)
        // What `enclave cleanroom encrypt` imports now: the policy names the broker's signing key as counterKey.
        let pinned = try services.importKey(
            raw,
            name: "bank-a-tx",
            policy: CleanRoomKeyRelease.releasePolicy(
                contract: contract,
                issuer: KeyReleaseTests.issuer,
                counterKey: brokerKey
            )
        )
        // What it imported before (no counter key): released to a room whatever its counter (the hole).
        let unpinned = try services.importKey(
            raw,
            name: "bank-a-tx-unpinned",
            policy: CleanRoomKeyRelease.releasePolicy(
                contract: contract,
                issuer: KeyReleaseTests.issuer,
                counterKey: nil
            )
        )
        let release = services.keyRelease(["bank-a-tx": pinned, "bank-a-tx-unpinned": unpinned])
        let side = BrokerCounterTests.BrokerSide(broker: services.broker, document: contract.canonicalBytes)
        let room = try await Self.start(
            signed,
            directory: directory,
            counter: counter,
            services: services,
            release: release,
            side: side
        )
        defer { Task { await room.close() } }
        _ = try await room.host.submitContract(contract.canonicalBytes)
        for signature in try durable.parties.signatures(contract) { _ = try await room.host.submitSignature(signature) }
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
            ownerSignature: try durable.parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        switch counter {
        case .none, .ownKey:
            let refused = await #expect(throws: ServiceError.self) {
                _ = try await room.host.loadDataSet(name: "a_tx", brokerKey: "bank-a-tx", version: nil)
            }
            #expect(refused?.code == BrokerRefusal.Code.policyNotSatisfied, "\(String(describing: refused))")
            #expect(refused?.status == .forbidden)
            #expect(
                refused?.message.contains("x-ms-runtime.counterKey") == true,
                "the refusal names the claim: \(String(describing: refused))"
            )
            let status = try await HostStatus.of(room.host)
            #expect(status.dataSets.first { $0.name == "a_tx" }?.rows == nil, "nothing may load")
            // The policy imported before this fix released it all the same: the check is the policy's.
            let report = try await room.host.loadDataSet(name: "a_tx", brokerKey: "bank-a-tx-unpinned", version: nil)
            #expect(report.rows == 40)
        case .broker:
            let report = try await room.host.loadDataSet(name: "a_tx", brokerKey: "bank-a-tx", version: nil)
            #expect(report.rows == 40)
            // The host's increment carries the clean room's fresh token (counterToken), which the broker accepts.
            let receipt = try await durable.run(room, contract)
            #expect(receipt.epsilonSpentMilli == 1000)
            // Counted twice: the load (its upload version), then the run.
            #expect(side.record.withLock { $0?.value } == 2)
        }
    }
}
