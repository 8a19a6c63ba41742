import AttestationService
import AttestationServicePostgres
import Foundation
import Testing

/// Review 7: removing a policy signer takes a transaction-scoped advisory lock, then counts the signers, so that two
/// instances removing the last two at once can't leave none. On a server whose `default_transaction_isolation` is
/// `repeatable read` (or `serializable`) the lock's own `SELECT` took the snapshot before the wait, so the second
/// counted two as well. The store now sets READ COMMITTED on each transaction that locks then checks.
@Suite(
    "Attestation service: PostgreSQL store under default_transaction_isolation = repeatable read",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct PostgresServiceIsolationTests {
    /// A fresh database whose sessions default to REPEATABLE READ; its URL.
    static func repeatableReadDatabase() async throws -> String {
        let base = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let name = "as_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = try await PostgresServiceStore.connect(url: base)
        try await admin.execute("CREATE DATABASE \(name)")
        try await admin.execute("ALTER DATABASE \(name) SET default_transaction_isolation = 'repeatable read'")
        try await admin.close()
        var components = try #require(URLComponents(string: base))
        components.path = "/" + name
        return try #require(components.string)
    }

    /// Two instances on such a database (they migrate at once), each removing one of the last two signers at once,
    /// round after round: one removal goes through, the other is refused as the last, and one signer stays. Failed
    /// before: both went through and no signer was left.
    @Test func removingTheLastTwoSignersAtOnceKeepsOne() async throws {
        let url = try await Self.repeatableReadDatabase()
        async let connectA = PostgresServiceStore.connect(url: url)
        async let connectB = PostgresServiceStore.connect(url: url)
        let (a, b) = try await (connectA, connectB)
        do {
            // The premise: a session of the store's defaults to REPEATABLE READ.
            try await a.execute(
                """
                DO $$ BEGIN
                IF current_setting('transaction_isolation') <> 'repeatable read' THEN
                    RAISE EXCEPTION 'transaction_isolation is %', current_setting('transaction_isolation');
                END IF;
                END $$
                """
            )
            for round in 0..<12 {
                try await a.execute("DELETE FROM policy_signers")
                let first = Array("signer-\(round)-a".utf8)
                let second = Array("signer-\(round)-b".utf8)
                #expect(try await a.addPolicySigner(first, at: Date()))
                #expect(try await a.addPolicySigner(second, at: Date()))
                async let removedA = a.removePolicySigner(first, at: Date())
                async let removedB = b.removePolicySigner(second, at: Date())
                let outcomes = try await [removedA, removedB]
                #expect(outcomes.map(\.rawValue).sorted() == ["last", "removed"], "round \(round): \(outcomes)")
                let left = try await b.policySigners()
                #expect(left.count == 1, "round \(round): \(left.count) signers left")
            }
        } catch {
            try? await a.close()
            try? await b.close()
            throw error
        }
        try await a.close()
        try await b.close()
    }
}
