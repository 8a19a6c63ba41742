import AttestationAPI
import AttestationService
import Foundation
import Hummingbird
import HummingbirdTesting
import KeyBrokerInterface
import KeyBrokerService
import TestSupport
import Testing

/// The broker host's store of clean rooms' rollback counters, and the counter routes.
@Suite("Key broker counter store")
struct CounterStoreTests {
    static let contract = String(repeating: "ab", count: 32)

    @Test func countersMoveOnlyByCompareAndSwapAndSurviveReopening() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        let store = try await SQLiteCounterStore.open(directory: directory)
        #expect(try await store.counter(contract: Self.contract) == nil)
        let one = BrokerCounterRecord(value: 1, state: String(repeating: "01", count: 32))
        let two = BrokerCounterRecord(value: 2, state: String(repeating: "02", count: 32))
        #expect(try await store.replaceCounter(contract: Self.contract, expected: 0, with: one))
        // A second writer from 0 loses; from the wrong value too.
        #expect(try await !store.replaceCounter(contract: Self.contract, expected: 0, with: one))
        #expect(try await !store.replaceCounter(contract: Self.contract, expected: 5, with: two))
        #expect(try await store.replaceCounter(contract: Self.contract, expected: 1, with: two))
        try await store.close()
        let reopened = try await SQLiteCounterStore.open(directory: directory)
        #expect(try await reopened.counter(contract: Self.contract) == two)
        #expect(try await reopened.counter(contract: String(repeating: "cd", count: 32)) == nil)
        try await reopened.close()
    }

    @Test func theRoutesAreServedOnlyWithACounterStoreAndNeedTheBrokerEnclave() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        let store = try await SQLiteKeyBrokerStore.open(directory: directory)
        let counters = try await SQLiteCounterStore.open(directory: directory)
        let core = try await KeyBrokerCore(
            store: store,
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: AdminCredential(token: KeyBrokerRoutesTests.admin)),
            baseURL: "https://broker.test"
        )
        let uri = "/counters/\(Self.contract)?nonce=" + String(repeating: "0", count: 32)
        do {
            try await Application(router: KeyBrokerServer.router(core: core)).test(.router) { client in
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .notFound)
            }
            try await Application(router: KeyBrokerServer.router(core: core, counters: counters)).test(.router) {
                client in
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .notImplemented)
                #expect(KeyBrokerRoutesTests.errorCode(String(buffer: response.body)) == "NoCounter")
                let increment = try await client.execute(
                    uri: "/counters/\(Self.contract)/increment",
                    method: .post,
                    body: ByteBuffer(string: #"{"nonce":"00000000000000000000000000000000","expected":0,"state":""}"#)
                )
                #expect(increment.status == .unauthorized)
            }
        } catch {
            try? await store.close()
            try? await counters.close()
            throw error
        }
        try await store.close()
        try await counters.close()
    }
}
