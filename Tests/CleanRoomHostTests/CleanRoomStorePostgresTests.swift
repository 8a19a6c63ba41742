import AttestationService
import CleanRoomHost
import CleanRoomHostPostgres
import Foundation
import TestSupport
import Testing

/// The clean room host's record operations (contract, signatures, halts, data set records, runs), the same on both
/// backends: SQLite in the data directory (the default) and PostgreSQL (`--database`), including after a reopen.
struct CleanRoomStoreRecordsTests {
    @Test("SQLite: the record operations")
    func sqlite() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        try await CleanRoomStoreRecordsChecks.run(directory: directory) {
            try await CleanRoomStore.open(directory: directory)
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/cleanroom.sqlite"))
    }

    @Test("SQLite: a database made before receipt v2 (a count of suppressed groups per run) opens, the count dropped")
    func sqliteBeforeReceiptV2() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let path = directory + "/cleanroom.sqlite"
        try await CleanRoomStore.open(directory: directory).close()
        // The runs table as the older build made it, with one run.
        for statement in [
            "DROP TABLE cr_runs",
            "CREATE TABLE cr_runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, sequence INTEGER NOT NULL, time REAL NOT NULL, suppressed INTEGER NOT NULL, result BLOB NOT NULL, receipt BLOB NOT NULL)",
            "INSERT INTO cr_runs VALUES ('old', 'q', 0, 1790000000.0, 1, X'01', X'02')",
        ] {
            _ = try await CleanRoomStore.executeSQLite(statement, path: path)
        }
        try await CleanRoomStoreRecordsChecks.beforeReceiptV2 {
            try await CleanRoomStore.open(directory: directory)
        } columns: {
            try await CleanRoomStore.executeSQLite("PRAGMA table_info(cr_runs)", path: path).compactMap { $0["name"] }
        }
    }

    @Test("PostgreSQL: an unreachable server or a bad URL is a named error, not a hang")
    func unreachable() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        for (url, code) in [
            ("postgres://nobody@127.0.0.1:1/none?sslmode=disable", "DatabaseUnavailable"),
            ("mysql://nobody@127.0.0.1/none", "InvalidDatabaseURL"),
        ] {
            let error = await #expect(throws: ServiceError.self) {
                _ = try await PostgresCleanRoomStore.open(directory: directory, url: url)
            }
            #expect(error?.code == code, "\(url)")
        }
    }
}

/// The PostgreSQL backend against a real server (each run on a database of its own). `.ci/run` and
/// `Scripts/test-postgres.sh` start a private cluster and set `ENCLAVEKIT_TEST_POSTGRES_URL`.
@Suite(
    "Clean room host: PostgreSQL store",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct CleanRoomStorePostgresTests {
    @Test("PostgreSQL: the record operations, the files in the data directory")
    func postgres() async throws {
        let base = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let name = "cr_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await PostgresCleanRoomStore.execute("CREATE DATABASE \(name)", url: base)
        var components = try #require(URLComponents(string: base))
        components.path = "/" + name
        let url = try #require(components.string)
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        try await CleanRoomStoreRecordsChecks.run(directory: directory) {
            try await PostgresCleanRoomStore.open(directory: directory, url: url)
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/cleanroom.sqlite"))
        #expect(FileManager.default.fileExists(atPath: directory + "/datasets"))
    }

    @Test(
        "PostgreSQL: a database made before receipt v2 (a count of suppressed groups per run) opens, the count dropped"
    )
    func postgresBeforeReceiptV2() async throws {
        let base = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        let name = "cr_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await PostgresCleanRoomStore.execute("CREATE DATABASE \(name)", url: base)
        var components = try #require(URLComponents(string: base))
        components.path = "/" + name
        let url = try #require(components.string)
        // The runs table as the older build made it, with one run.
        for statement in [
            "CREATE TABLE cr_runs (id TEXT PRIMARY KEY, query TEXT NOT NULL, sequence BIGINT NOT NULL, time DOUBLE PRECISION NOT NULL, suppressed BIGINT NOT NULL, result BYTEA NOT NULL, receipt BYTEA NOT NULL)",
            "INSERT INTO cr_runs VALUES ('old', 'q', 0, 1790000000.0, 1, decode('01', 'hex'), decode('02', 'hex'))",
        ] {
            try await PostgresCleanRoomStore.execute(statement, url: url)
        }
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        try await CleanRoomStoreRecordsChecks.beforeReceiptV2 {
            try await PostgresCleanRoomStore.open(directory: directory, url: url)
        } columns: {
            // execute answers no rows: a statement per column that fails when the column is not there.
            var columns: [String] = []
            for column in ["id", "query", "sequence", "time", "suppressed", "result", "receipt"] {
                let check = """
                    DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = \
                    current_schema() AND table_name = 'cr_runs' AND column_name = '\(column)') THEN \
                    RAISE EXCEPTION 'no such column'; END IF; END $$
                    """
                if (try? await PostgresCleanRoomStore.execute(check, url: url)) == nil { continue }
                columns.append(column)
            }
            return columns
        }
    }

}

/// The checks both backends run.
enum CleanRoomStoreRecordsChecks {
    /// A store whose runs table an older build made (with `suppressed`, NOT NULL, and the run `old` in it) opens:
    /// the old run is read, a new one (which has no such count) is stored, the column is gone (`columns` lists the
    /// table's), and it opens again.
    static func beforeReceiptV2(
        open: () async throws -> CleanRoomStore,
        columns: () async throws -> [String]
    ) async throws {
        let old = CleanRoomStore.RunRecord(
            id: "old",
            queryID: "q",
            sequence: 0,
            time: Date(timeIntervalSince1970: 1_790_000_000),
            result: [1],
            receipt: [2]
        )
        let new = CleanRoomStore.RunRecord(
            id: "new",
            queryID: "q",
            sequence: 1,
            time: Date(timeIntervalSince1970: 1_790_000_001),
            result: [3],
            receipt: [4]
        )
        let store = try await open()
        #expect(try await store.runs() == [old])
        try await store.putRun(new)
        #expect(try await store.runs() == [old, new])
        try await store.close()
        #expect(try await columns() == ["id", "query", "sequence", "time", "result", "receipt"])
        let reopened = try await open()
        #expect(try await reopened.runs() == [old, new])
        try await reopened.close()
    }

    static func run(directory: String, open: () async throws -> CleanRoomStore) async throws {
        let store = try await open()
        #expect(store.dataSetPath("sales").hasPrefix(directory + "/datasets/"))
        #expect(store.dataSetSignaturePath("sales").hasPrefix(directory + "/datasets/"))

        // The contract: one per host.
        #expect(try await store.contract() == nil)
        #expect(try await store.setContract([1, 2, 3], id: "c1"))
        #expect(try await store.setContract([9], id: "c2") == false)
        #expect(try await store.contract() == [1, 2, 3])

        // Signatures and halts: one per party, a later one replaces it, ordered by party.
        try await store.putSignature(party: "bob", [0xB0])
        try await store.putSignature(party: "alice", [0xA0])
        try await store.putSignature(party: "alice", [0xA1])
        try await store.putHalt(party: "carol", [0xC0])
        #expect(try await store.signatures() == [[0xA1], [0xB0]])
        #expect(try await store.halts() == [[0xC0]])

        // Data set records: a later upload replaces the record, ordered by name.
        let uploaded = Date(timeIntervalSince1970: 1_790_000_000.5)
        let first = CleanRoomStore.DataSetRecord(
            name: "sales",
            path: store.dataSetPath("sales"),
            size: 10,
            sha256: String(repeating: "a", count: 64),
            uploaded: uploaded
        )
        var second = first
        second.size = 1 << 40
        second.sha256 = String(repeating: "b", count: 64)
        let other = CleanRoomStore.DataSetRecord(
            name: "ads",
            path: store.dataSetPath("ads"),
            size: 5,
            sha256: String(repeating: "c", count: 64),
            uploaded: uploaded
        )
        try await store.putDataSet(first)
        try await store.putDataSet(other)
        try await store.putDataSet(second)
        #expect(try await store.dataSets() == [other, second])

        // Runs: a stored ID is kept as it is; by ID; the latest `limit` oldest first.
        let runs: [CleanRoomStore.RunRecord] = (1...3).map { (sequence: Int) -> CleanRoomStore.RunRecord in
            let byte = UInt8(sequence)
            let seconds: Double = 1_790_000_000 + Double(sequence)
            return CleanRoomStore.RunRecord(
                id: "run\(sequence)",
                queryID: "q\(sequence % 2)",
                sequence: Int64(sequence),
                time: Date(timeIntervalSince1970: seconds),
                result: [byte, 0, 0xFF],
                receipt: [UInt8](repeating: byte, count: 40)
            )
        }
        for run in runs.reversed() { try await store.putRun(run) }
        var replaced = runs[0]
        replaced.result = [0xEE]
        try await store.putRun(replaced)
        #expect(try await store.run("run1") == runs[0])
        #expect(try await store.run("none") == nil)
        #expect(try await store.runs() == runs)
        #expect(try await store.runs(limit: 2) == Array(runs[1...]))
        // The summaries (the status page's read): the same runs, without results and receipts.
        #expect(try await store.runSummaries() == runs.map(CleanRoomStore.RunSummary.init))
        #expect(try await store.runSummaries(limit: 2) == runs[1...].map(CleanRoomStore.RunSummary.init))
        try await store.close()

        // Everything is still there after a reopen.
        let reopened = try await open()
        #expect(try await reopened.contract() == [1, 2, 3])
        #expect(try await reopened.signatures() == [[0xA1], [0xB0]])
        #expect(try await reopened.halts() == [[0xC0]])
        #expect(try await reopened.dataSets() == [other, second])
        #expect(try await reopened.runs() == runs)
        try await reopened.close()
    }
}
