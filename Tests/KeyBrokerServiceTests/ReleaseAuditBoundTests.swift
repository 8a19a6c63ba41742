import AttestationAPI
import AttestationService
import Foundation
import KeyBrokerInterface
import KeyBrokerService
import TestSupport
import Testing

/// Finding B: anonymous release requests (no verified token) must not grow the append-only audit log. Before the
/// fix every such refusal was one `kb_audit` row (with the unverified token's claims, about 2.7 KB each), which an
/// unauthenticated client could loop until the disk was full and every release answered 500.
@Suite("Key broker release audit bound")
struct ReleaseAuditBoundTests {
    static let version = String(repeating: "d", count: 32)

    static func key(_ name: String) -> StoredKeyVersion {
        StoredKeyVersion(
            key: StoredKey(
                name: name,
                version: version,
                type: .aes256,
                keyOperations: ["wrapKey"],
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: [1], immutable: false),
                publicKey: nil,
                blob: [1, 2, 3]
            ),
            attributes: KeyAttributes(enabled: true, exportable: true),
            tags: nil
        )
    }

    /// `count` releases of `name` with `target`, 64 at a time; the error codes they got.
    static func release(
        _ core: KeyBrokerCore,
        name: String,
        version: String = "",
        target: String,
        count: Int
    ) async -> [String] {
        await withTaskGroup(of: String.self) { group in
            var codes: [String] = []
            for index in 0..<count {
                if index >= 64, let code = await group.next() { codes.append(code) }
                group.addTask {
                    do {
                        _ = try await core.release(
                            name: name,
                            version: version,
                            parameters: KeyReleaseParameters(target: target)
                        )
                        return "released"
                    } catch let error as ServiceError {
                        return error.code
                    } catch {
                        return "\(error)"
                    }
                }
            }
            for await code in group { codes.append(code) }
            return codes
        }
    }

    @Test("10,000 anonymous refusals (unknown name, invalid name, junk 64 KiB token) add no audit row")
    func anonymousRefusalsDoNotGrowTheAuditLog() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        #expect(try await store.insertVersion(Self.key("k"), created: Date()))
        let core = try await KeyBrokerCore(
            store: store,
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: nil)
        )
        let junk = String(repeating: "A", count: KeyBrokerCore.maximumTokenSize)
        let unknown = await Self.release(core, name: "nosuch", target: junk, count: 6000)
        let invalid = await Self.release(core, name: "no such!", target: "x", count: 2000)
        let forged = await Self.release(core, name: "k", target: junk, count: 2000)
        #expect(Set(unknown) == ["KeyNotFound"])
        #expect(Set(invalid) == ["BadParameter"])
        #expect(Set(forged) == ["InvalidSignature"])
        let rows = try await store.auditEntries(limit: 100_000)
        #expect(rows.count == 0, "\(rows.count) audit rows after 10,000 anonymous refusals")
        // Every refusal is still accounted for: counted per minute, key (when it exists) and code.
        let counts = try await store.refusalCounts(limit: 1000)
        #expect(counts.reduce(0) { $0 + $1.count } == 10_000)
        // Counted, not logged: one row per minute, key and code, whatever the minutes the run took (a loaded CI machine
        // took six minutes over it).
        let keys = Set(counts.map { "\($0.minute) \($0.key) \($0.code)" })
        #expect(keys.count == counts.count, "two rows for one minute, key and code")
        #expect(counts.count <= 3 * Set(counts.map(\.minute)).count, "\(counts.count) rows: more than 3 per minute")
        var totals: [String: Int64] = [:]
        for count in counts { totals["\(count.key) \(count.code)", default: 0] += count.count }
        #expect(totals == ["- KeyNotFound": 6000, "- BadParameter": 2000, "k InvalidSignature": 2000])
        // Nothing of the unverified token is kept.
        #expect(counts.allSatisfy { !$0.key.contains("AAAA") && !$0.code.contains("AAAA") })
        try await store.close()
    }

    @Test("A grant and a verified token's refusal stay individual audit records with the token's claims")
    func grantsAndVerifiedRefusalsAreAudited() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        #expect(try await store.insertVersion(Self.key("k"), created: Date()))
        let core = try await KeyBrokerCore(
            store: store,
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: nil)
        )
        #expect(await Self.release(core, name: "k", target: "good", count: 1) == ["released"])
        #expect(await Self.release(core, name: "k", target: "verified-refused", count: 1) == ["PolicyNotSatisfied"])
        let rows = try await store.auditEntries(limit: 10)
        #expect(rows.map(\.result) == ["refused", "granted"])
        #expect(rows[0].reason.hasPrefix("PolicyNotSatisfied"))
        #expect(rows.allSatisfy { $0.jti == "jti-1" && $0.claims == #"{"x-ms-sgx-mrsigner":"ab"}"# })
        #expect(try await store.refusalCounts(limit: 10).isEmpty)
        try await store.close()
    }

    @Test("Refusal counts are bounded: older than the retention and beyond the most kept are deleted")
    func refusalCountsArePruned() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let counts = (0..<50).map {
            KeyBrokerRefusalCount(minute: 1000 + Int64($0), key: "-", code: "KeyNotFound", count: 2)
        }
        try await store.countRefusals(counts)
        try await store.countRefusals([KeyBrokerRefusalCount(minute: 1049, key: "-", code: "KeyNotFound", count: 3)])
        #expect(try await store.refusalCounts(limit: 1).first?.count == 5, "a count in the same minute grows")
        try await store.pruneRefusals(before: 1010, keepingAtMost: 100)
        #expect(try await store.refusalCounts(limit: 1000).count == 40)
        try await store.pruneRefusals(before: 0, keepingAtMost: 10)
        let kept = try await store.refusalCounts(limit: 1000)
        #expect(kept.map(\.minute) == (1040..<1050).reversed().map { Int64($0) })
        // Unlike the audit log, the table takes deletes (that is how it stays bounded).
        try await store.execute("DELETE FROM kb_refusals")
        #expect(try await store.refusalCounts(limit: 1000).isEmpty)
        try await store.close()
    }

    @Test(
        "Pruning keeps the newest rows however many ids repeated upserts took (one refusal repeated pushes nothing out)"
    )
    func pruningIgnoresGapsInIDs() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        // One refusal counted in six batches (each upsert after the first takes an id it does not keep), then another.
        for _ in 0..<6 {
            try await store.countRefusals([
                KeyBrokerRefusalCount(minute: 1000, key: "-", code: "KeyNotFound", count: 1)
            ])
        }
        try await store.countRefusals([KeyBrokerRefusalCount(minute: 1001, key: "-", code: "BadParameter", count: 1)])
        try await store.pruneRefusals(before: 0, keepingAtMost: 2)
        #expect(try await store.refusalCounts(limit: 10).map(\.minute) == [1001, 1000])
        try await store.pruneRefusals(before: 0, keepingAtMost: 0)
        #expect(try await store.refusalCounts(limit: 10).isEmpty)
        try await store.close()
    }

    @Test("A failed refusal count answers 500, as a failed audit write does (fail closed)")
    func failedCountFailsTheRequest() async throws {
        let base = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let core = try await KeyBrokerCore(
            store: ReleaseWireTests.FailingAuditStore(base: base),
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: nil)
        )
        #expect(
            await Self.release(core, name: "nosuch", target: "x", count: 3) == [
                "InternalError", "InternalError", "InternalError",
            ]
        )
        try await base.close()
    }
}
