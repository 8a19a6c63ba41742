import AttestationAPI
import Foundation
import KeyBrokerInterface
import KeyBrokerService
import KeyBrokerServicePostgres
import Testing

/// The key broker's PostgreSQL store (issue 12 item 6), against a real PostgreSQL: the SQLite store's semantics
/// (versions, soft delete, purge), the append-only audit log, and two instances on one database racing the keyring
/// identifier and new versions. Each test gets a database of its own. `.ci/run` starts a private PostgreSQL cluster
/// and sets `ENCLAVEKIT_TEST_POSTGRES_URL` (`Scripts/test-postgres.sh` does the same by hand).
@Suite(
    "Key broker: PostgreSQL store",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct PostgresKeyBrokerStoreTests {
    /// A fresh database on the test server; its URL.
    static func scratchDatabase() async throws -> String {
        let base = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let name = "kb_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = try await PostgresKeyBrokerStore.connect(url: base)
        try await admin.execute("CREATE DATABASE \(name)")
        try await admin.close()
        var components = try #require(URLComponents(string: base))
        components.path = "/" + name
        return try #require(components.string)
    }

    static func stored(_ name: String, _ version: String, blob: UInt8 = 1) -> StoredKeyVersion {
        StoredKeyVersion(
            key: StoredKey(
                name: name,
                version: version,
                type: .aes256,
                keyOperations: ["wrapKey", "unwrapKey"],
                attributes: BrokerKeyAttributes(exportable: false, releasePolicy: nil, immutable: false),
                publicKey: nil,
                blob: [UInt8](repeating: blob, count: 40)
            ),
            attributes: KeyAttributes(enabled: true, exportable: false),
            tags: ["owner": name]
        )
    }

    static func audit(_ operation: String, result: String = "granted") -> KeyBrokerAuditEntry {
        KeyBrokerAuditEntry(
            id: 0,
            time: Date().timeIntervalSince1970,
            operation: operation,
            key: "k",
            version: nil,
            result: result,
            reason: "test",
            issuer: "https://authority.test",
            jti: "jti-" + operation,
            claims: nil
        )
    }

    @Test func versionsSoftDeleteRecoverAndPurgeAsSQLiteDoes() async throws {
        let store = try await PostgresKeyBrokerStore.connect(url: try await Self.scratchDatabase())
        let first = Self.stored("alpha", String(repeating: "a", count: 32))
        let second = Self.stored("alpha", String(repeating: "b", count: 32), blob: 2)
        #expect(try await store.insertVersion(first, created: Date()))
        #expect(try await store.insertVersion(second, created: Date()))
        #expect(try await store.insertVersion(Self.stored("beta", String(repeating: "c", count: 32)), created: Date()))
        #expect(try await store.version(name: "alpha", version: first.version) == first)
        #expect(try await store.latestVersion(name: "alpha") == second)
        #expect(try await store.versions(name: "alpha") == [first, second])
        #expect(try await store.latestVersions(limit: 10).map(\.name) == ["alpha", "beta"])
        #expect(try await store.latestVersions(limit: 1).map(\.name) == ["alpha"])

        var changed = second
        changed.tags = ["owner": "changed"]
        #expect(try await store.replaceVersion(changed))
        #expect(try await store.latestVersion(name: "alpha")?.tags == ["owner": "changed"])
        #expect(try await !store.replaceVersion(Self.stored("nothing", String(repeating: "d", count: 32))))

        // Soft delete: invisible, no new versions, recoverable; purge only a deleted key.
        #expect(try await !store.purge(name: "alpha"))
        let deletedAt = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try await store.setDeleted(name: "alpha", at: deletedAt))
        #expect(try await !store.setDeleted(name: "alpha", at: deletedAt))
        #expect(try await store.latestVersion(name: "alpha") == nil)
        #expect(try await store.versions(name: "alpha").isEmpty)
        #expect(try await store.latestVersions(limit: 10).map(\.name) == ["beta"])
        let deleted = try #require(try await store.deletedKey(name: "alpha"))
        #expect(deleted.version == changed)
        #expect(deleted.deleted == deletedAt)
        #expect(
            try await !store.insertVersion(Self.stored("alpha", String(repeating: "e", count: 32)), created: Date())
        )
        #expect(try await !store.replaceVersion(changed))
        #expect(try await store.setDeleted(name: "alpha", at: nil))
        #expect(try await store.deletedKey(name: "alpha") == nil)
        #expect(try await store.versions(name: "alpha") == [first, changed])
        #expect(try await store.setDeleted(name: "alpha", at: deletedAt))
        #expect(try await store.purge(name: "alpha"))
        #expect(try await store.deletedKey(name: "alpha") == nil)
        #expect(try await store.insertVersion(Self.stored("alpha", String(repeating: "f", count: 32)), created: Date()))
        #expect(try await store.versions(name: "alpha").map(\.version) == [String(repeating: "f", count: 32)])
        try await store.close()
    }

    @Test func theAuditLogRefusesUpdateDeleteAndTruncate() async throws {
        let url = try await Self.scratchDatabase()
        let store = try await PostgresKeyBrokerStore.connect(url: url)
        try await store.appendAudit(Self.audit("create"))
        try await store.appendAudit(Self.audit("release", result: "refused"))
        let before = try await store.auditEntries(limit: 10)
        #expect(before.map(\.operation) == ["release", "create"])
        #expect(before.first?.result == "refused")
        #expect(before.first?.jti == "jti-release")
        #expect(before.first?.key == "k")
        #expect(before.first?.version == nil)
        for statement in [
            "UPDATE kb_audit SET result = 'granted'",
            "DELETE FROM kb_audit",
            "TRUNCATE kb_audit",
        ] {
            await #expect(throws: (any Error).self, "\(statement) was allowed") {
                try await store.execute(statement)
            }
        }
        // A second start (migration again) keeps the triggers, and the records are as written.
        let again = try await PostgresKeyBrokerStore.connect(url: url)
        await #expect(throws: (any Error).self) { try await again.execute("DELETE FROM kb_audit") }
        #expect(try await again.auditEntries(limit: 10) == before)
        #expect(try await again.auditEntries(limit: 1).count == 1)
        try await again.close()
        try await store.close()
    }

    @Test func anAuditBatchIsStoredInOrderAllOrNone() async throws {
        let store = try await PostgresKeyBrokerStore.connect(url: try await Self.scratchDatabase())
        // 2,500 records: three statements (1,000 rows each at most) in one transaction, in order, NULLs kept.
        let entries = (0..<2500).map { index in
            var entry = Self.audit("op\(index)")
            if index.isMultiple(of: 2) { entry.jti = nil }
            return entry
        }
        try await store.appendAudit(batch: entries)
        let stored = try await store.auditEntries(limit: 3000)
        #expect(stored.count == 2500)
        #expect(stored.map(\.operation) == entries.reversed().map(\.operation))
        #expect(stored.map(\.jti) == entries.reversed().map(\.jti))
        // A batch whose last record the database refuses (NUL is not allowed in TEXT) stores none of it.
        var bad = Self.audit("bad")
        bad.reason = "nul\u{0}byte"
        await #expect(throws: (any Error).self) {
            try await store.appendAudit(batch: (0..<1500).map { _ in Self.audit("lost") } + [bad])
        }
        #expect(try await store.auditEntries(limit: 5000).count == 2500)
        try await store.appendAudit(batch: [])
        try await store.close()
    }

    @Test func twoInstancesStartingAtOnceAgreeOnOneKeyringAndInterleaveVersions() async throws {
        let url = try await Self.scratchDatabase()
        // Both migrate at once (CREATE TABLE races), then race to record their own keyring.
        async let connectA = PostgresKeyBrokerStore.connect(url: url)
        async let connectB = PostgresKeyBrokerStore.connect(url: url)
        let (a, b) = try await (connectA, connectB)
        #expect(try await a.keyringID() == nil)
        async let recordedA = a.keyringID(orInsert: "keyring-a")
        async let recordedB = b.keyringID(orInsert: "keyring-b")
        let (idA, idB) = try await (recordedA, recordedB)
        #expect(idA == idB)
        #expect(["keyring-a", "keyring-b"].contains(idA))
        // Later candidates never replace it.
        #expect(try await a.keyringID(orInsert: "keyring-c") == idA)
        #expect(try await b.keyringID() == idA)

        // Both insert versions of one name at once: every version kept, once, in one order both see.
        let count = 20
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<count {
                let store = index.isMultiple(of: 2) ? a : b
                let version = Self.stored("shared", String(format: "%032x", index))
                group.addTask { try await store.insertVersion(version, created: Date()) }
            }
            for try await inserted in group { #expect(inserted) }
        }
        let seenA = try await a.versions(name: "shared").map(\.version)
        let seenB = try await b.versions(name: "shared").map(\.version)
        #expect(seenA.count == count)
        #expect(Set(seenA) == Set((0..<count).map { String(format: "%032x", $0) }))
        #expect(seenA == seenB)
        #expect(try await a.latestVersion(name: "shared")?.version == seenA.last)
        // The same version twice is refused by the database, not stored twice.
        await #expect(throws: (any Error).self) {
            _ = try await b.insertVersion(Self.stored("shared", String(format: "%032x", 0)), created: Date())
        }

        // A delete racing new versions: afterwards either everything is deleted or the insert came first and was
        // deleted with the rest; never a live version beside a deleted one.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await a.setDeleted(name: "shared", at: Date()) }
            for index in count..<(count + 5) {
                let version = Self.stored("shared", String(format: "%032x", index))
                group.addTask { _ = try await b.insertVersion(version, created: Date()) }
            }
            try await group.waitForAll()
        }
        #expect(try await a.versions(name: "shared").isEmpty)
        #expect(try await b.deletedKey(name: "shared") != nil)
        try await a.close()
        try await b.close()
    }

    /// Finding B on PostgreSQL: anonymous release refusals are counted (per minute, key and code), not appended to
    /// the audit log; the counts are pruned by age and number, and add up across batches and instances.
    @Test func anonymousRefusalsAreCountedAndBounded() async throws {
        let url = try await Self.scratchDatabase()
        let store = try await PostgresKeyBrokerStore.connect(url: url)
        let version = String(repeating: "a", count: 32)
        #expect(try await store.insertVersion(Self.stored("k", version), created: Date()))
        let core = try await KeyBrokerCore(
            store: store,
            engine: FakeBrokerEngine(),
            configuration: .init(adminCredential: nil)
        )
        let junk = String(repeating: "A", count: KeyBrokerCore.maximumTokenSize)
        let unknown = await ReleaseAuditBoundTests.release(core, name: "nosuch", target: junk, count: 1500)
        let forged = await ReleaseAuditBoundTests.release(core, name: "k", target: junk, count: 500)
        #expect(Set(unknown) == ["KeyNotFound"])
        #expect(Set(forged) == ["InvalidSignature"])
        #expect(try await store.auditEntries(limit: 10_000).isEmpty)
        var totals: [String: Int64] = [:]
        for count in try await store.refusalCounts(limit: 1000) {
            totals["\(count.key) \(count.code)", default: 0] += count.count
        }
        #expect(totals == ["- KeyNotFound": 1500, "k InvalidSignature": 500])

        // A second instance on the same database adds to the same minute's row.
        let other = try await PostgresKeyBrokerStore.connect(url: url)
        let minute = Int64(1000)
        try await store.countRefusals([KeyBrokerRefusalCount(minute: minute, key: "-", code: "KeyNotFound", count: 2)])
        try await other.countRefusals([KeyBrokerRefusalCount(minute: minute, key: "-", code: "KeyNotFound", count: 3)])
        let rows = try await other.refusalCounts(limit: 1000).filter { $0.minute == minute }
        #expect(rows.map(\.count) == [5])
        try await other.countRefusals(
            (1..<60).map { KeyBrokerRefusalCount(minute: minute + Int64($0), key: "-", code: "KeyNotFound", count: 1) }
        )
        try await other.pruneRefusals(before: minute + 10, keepingAtMost: 1_000_000)
        #expect(try await other.refusalCounts(limit: 1000).allSatisfy { $0.minute >= minute + 10 })
        // The minute-1000 row took sequence values for each upsert that met it: pruning keeps exactly five anyway.
        try await other.pruneRefusals(before: 0, keepingAtMost: 5)
        #expect(try await other.refusalCounts(limit: 1000).count == 5)
        try await other.close()
        try await store.close()
    }

    /// Review 5, finding 2 on PostgreSQL: a name an owner imported under takes no other version (after a purge too),
    /// an owner's import needs a fresh name; two instances racing owners' and administrators' inserts on one name
    /// leave it one origin's; a database from before origins gains the column.
    @Test func ownerNamesAcrossInstances() async throws {
        let url = try await Self.scratchDatabase()
        let a = try await PostgresKeyBrokerStore.connect(url: url)
        let b = try await PostgresKeyBrokerStore.connect(url: url)
        try await OwnerKeyNameTests.storeRules(a)
        try await OwnerKeyNameTests.race([a, b])
        // The schema before origins: no column; a version stored then, not an owner's.
        try await a.execute("ALTER TABLE kb_keys DROP COLUMN origin")
        try await a.execute(
            "INSERT INTO kb_keys (name, version, record, created) VALUES ('legacy', '"
                + String(repeating: "0", count: 32) + "', '{}', 0)"
        )
        try await b.close()
        try await a.close()
        let migrated = try await PostgresKeyBrokerStore.connect(url: url)
        await #expect(throws: KeyNameRefusal.inUse) {
            _ = try await migrated.insertVersion(
                OwnerKeyNameTests.stored("legacy", version: 1, origin: .owner),
                created: Date()
            )
        }
        #expect(
            try await migrated.insertVersion(
                OwnerKeyNameTests.stored("legacy", version: 2, origin: .administrator),
                created: Date()
            )
        )
        await #expect(throws: KeyNameRefusal.ownedByImporter) {
            _ = try await migrated.insertVersion(
                OwnerKeyNameTests.stored("owners", version: 9, origin: .administrator),
                created: Date()
            )
        }
        try await migrated.close()
    }
}
