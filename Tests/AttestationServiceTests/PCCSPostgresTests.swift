import AttestationService
import AttestationServicePostgres
import Foundation
import Testing

/// The collateral cache on PostgreSQL: replicas sharing one database fetch each piece once between them.
/// `.ci/run` (and `Scripts/test-postgres.sh`) set `ENCLAVEKIT_TEST_POSTGRES_URL`.
@Suite(
    "Attestation service: collateral cache on PostgreSQL",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct PCCSPostgresTests {
    @Test func replicasShareTheCollateralCache() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let quote = try CollateralServiceTests.RealQuote.tdx()
        let pccs = FakePCCS()
        try pccs.serve(bundle: quote.collateralPath, tee: "tdx")
        try await pccs.start()
        let first = try await PostgresServiceStore.connect(url: url)
        let second = try await PostgresServiceStore.connect(url: url)
        do {
            try await CollateralServiceTests.cacheRoundTrip(first)
            let a = try await PCCSTests.makeCore(pccs: pccs, store: first)
            let b = try await PCCSTests.makeCore(pccs: pccs, store: second)
            let before = pccs.total
            let token = try await a.attest(type: quote.type, request: .init(evidence: quote.evidence), at: quote.time)
            #expect(try await PCCSTests.tcbStatus(token, a, at: quote.time) == .string(quote.expectedStatus))
            let afterFirst = pccs.total
            #expect(afterFirst - before <= 4, "\(pccs.counts)")
            // The replica finds every piece in the shared table: no fetch.
            let other = try await b.attest(type: quote.type, request: .init(evidence: quote.evidence), at: quote.time)
            #expect(try await PCCSTests.tcbStatus(other, b, at: quote.time) == .string(quote.expectedStatus))
            #expect(pccs.total == afterFirst, "\(pccs.counts)")
        } catch {
            await pccs.stop()
            try? await first.close()
            try? await second.close()
            throw error
        }
        await pccs.stop()
        try await first.close()
        try await second.close()
    }
}
