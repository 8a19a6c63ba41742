import AttestationAPI
import Foundation
import TestSupport
import Testing

@testable import KeyBrokerService

/// The audit log's group commit (issue 12 item 12): records written together are each stored before their caller
/// returns, in arrival order, and a batch that can't be written fails every caller in it — nothing is answered
/// unrecorded.
@Suite("KeyBrokerService: audit group commit")
struct AuditBatchTests {
    static func entry(_ index: Int) -> KeyBrokerAuditEntry {
        KeyBrokerAuditEntry(
            id: 0,
            time: 1_700_000_000 + Double(index),
            operation: "release",
            key: "k\(index)",
            version: index.isMultiple(of: 2) ? nil : "v",
            result: "granted",
            reason: "record \(index) \"quoted\" 'single' ; DROP TABLE kb_audit; --",
            issuer: nil,
            jti: "j\(index)",
            claims: index.isMultiple(of: 3) ? #"{"x-ms-sgx-svn":"2"}"# : nil
        )
    }

    @Test func concurrentRecordsAreAllStoredBeforeTheirCallersReturn() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let batcher = AuditBatcher(store: store)
        let count = 600
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await batcher.append(Self.entry(index))
                    // Returned: the record is in the store now.
                    let stored = try await store.auditEntries(limit: 10_000)
                    #expect(stored.contains { $0.jti == "j\(index)" })
                }
            }
            try await group.waitForAll()
        }
        let stored = try await store.auditEntries(limit: 10_000)
        #expect(stored.count == count)
        for record in stored {
            let jti = try #require(record.jti)
            let index = try #require(Int(jti.dropFirst()))
            var expected = Self.entry(index)
            expected.id = record.id
            #expect(record == expected)
        }
        // The append-only triggers still hold for rows a batch wrote.
        await #expect(throws: (any Error).self) { try await store.execute("DELETE FROM kb_audit") }
        try await store.close()
    }

    @Test func aBatchWrittenInOneStatementKeepsItsOrder() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        try await store.appendAudit(batch: (0..<300).map(Self.entry))
        let stored = try await store.auditEntries(limit: 1000).reversed().map { $0.jti ?? "" }
        #expect(stored == (0..<300).map { "j\($0)" })
        try await store.close()
    }

    @Test func aBatchThatCannotBeWrittenFailsEveryCaller() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        try await store.close()
        let batcher = AuditBatcher(store: store)
        let failures = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<50 {
                group.addTask {
                    do {
                        try await batcher.append(Self.entry(index))
                        return false
                    } catch { return true }
                }
            }
            var failed = 0
            for await didFail in group where didFail { failed += 1 }
            return failed
        }
        #expect(failures == 50)
    }
}
