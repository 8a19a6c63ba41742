import Foundation
import KeyBrokerService
import KeyBrokerServicePostgres
import Testing

/// Review 7: the store serializes changes to one name with a transaction-scoped advisory lock and checks the name
/// after taking it. On a server whose `default_transaction_isolation` is `repeatable read` (or `serializable`) the
/// lock's own `SELECT` took the transaction's snapshot before the wait, so the check did not see what the previous
/// holder committed and an owner's and an administrator's inserts on one name could both pass. The store now sets
/// READ COMMITTED on every transaction that locks then checks; these tests run it on such a database.
@Suite(
    "Key broker: PostgreSQL store under default_transaction_isolation = repeatable read",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct PostgresIsolationTests {
    /// A fresh database whose sessions default to REPEATABLE READ; its URL.
    static func repeatableReadDatabase() async throws -> String {
        let url = try await PostgresKeyBrokerStoreTests.scratchDatabase()
        let name = try #require(URLComponents(string: url)?.path.dropFirst())
        let base = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let admin = try await PostgresKeyBrokerStore.connect(url: base)
        try await admin.execute("ALTER DATABASE \(name) SET default_transaction_isolation = 'repeatable read'")
        try await admin.close()
        return url
    }

    /// Fails unless a new session of the store's on `url` defaults to REPEATABLE READ (the premise of the tests).
    static func expectRepeatableRead(_ store: PostgresKeyBrokerStore) async throws {
        try await store.execute(
            """
            DO $$ BEGIN
            IF current_setting('default_transaction_isolation') <> 'repeatable read' THEN
                RAISE EXCEPTION 'default_transaction_isolation is %', current_setting('default_transaction_isolation');
            END IF;
            END $$
            """
        )
    }

    /// Owners' and administrators' inserts racing on fresh names through two instances: each name ends up one
    /// origin's. Failed before: names held both an owner's and administrators' versions.
    @Test func ownerAndAdministratorRaceLetsOneThrough() async throws {
        let url = try await Self.repeatableReadDatabase()
        let a = try await PostgresKeyBrokerStore.connect(url: url)
        let b = try await PostgresKeyBrokerStore.connect(url: url)
        do {
            try await Self.expectRepeatableRead(a)
            try await Self.expectRepeatableRead(b)
            try await OwnerKeyNameTests.race([a, b])
        } catch {
            try? await a.close()
            try? await b.close()
            throw error
        }
        try await a.close()
        try await b.close()
    }

    /// Two instances migrating a fresh database at once (three databases): the second, after the lock, sees what
    /// the first created (the audit table's triggers) rather than creating it again.
    @Test func instancesMigratingAtOnce() async throws {
        for _ in 0..<3 {
            let url = try await Self.repeatableReadDatabase()
            async let connectA = PostgresKeyBrokerStore.connect(url: url)
            async let connectB = PostgresKeyBrokerStore.connect(url: url)
            let (a, b) = try await (connectA, connectB)
            try await Self.expectRepeatableRead(a)
            try await a.close()
            try await b.close()
        }
    }
}
