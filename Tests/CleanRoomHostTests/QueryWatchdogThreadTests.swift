import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveHost
import Foundation
import Testing

/// Review 7, finding 1: the clean room's per-query time limit must not start Dispatch's worker pool inside the
/// enclave. Dispatch's pool runs a monitor that opens `/proc/TID/stat` while the pool has work; the enclave's sandbox
/// refuses the open and libdispatch then traps (SIGILL). The watchdog was a `DispatchQueue.global().asyncAfter`
/// timer per query, which started Dispatch's manager and worker threads.
@Suite("Clean room query watchdog inside the enclave", .serialized)
struct QueryWatchdogThreadTests {
    let queries = QueryTests()

    /// The threads of process `pid` other than its main thread, as `TID:name`.
    static func threads(of pid: Int32) -> Set<String> {
        let directory = "/proc/\(pid)/task"
        guard let tids = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var names = Set<String>()
        for tid in tids where tid != String(pid) {
            let name = (try? String(contentsOfFile: "\(directory)/\(tid)/comm", encoding: .utf8)) ?? ""
            names.insert("\(tid):\(name.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return names
    }

    /// The threads of `pid` that are neither the enclave runtime's (`enclave-…`, and its channel reader, which keeps
    /// the process's name) nor the clean room's watchdog (`cleanroom-watch`): Dispatch's threads (named after their
    /// root queue, e.g. `com.apple.root.default-qos`, seen as `oot.default-qos` and `-qos.overcommit`) or anything
    /// else.
    static func foreignThreads(of pid: Int32, processName: String) -> Set<String> {
        threads(of: pid).filter { entry in
            let name = entry.drop { $0 != ":" }.dropFirst()
            return !name.hasPrefix("enclave-") && name != processName && name != "cleanroom-watch"
        }
    }

    /// Many queries in a real clean room enclave, one of them cut off by its 30 s time limit: every answer is right,
    /// the enclave survives, and no thread but the runtime's own and the clean room's watchdog ever runs in it (the
    /// Dispatch timers of the queries before the cut-off one have all come due by the time it ends).
    @Test func queriesAndTimeLimitsStartNoDispatchThread() async throws {
        let harness = try await CleanRoomHostRoutesTests.harness()
        defer { Task { await harness.close() } }
        var contract = queries.contract(harness.fixture.requirement)
        // 46^7 rows of a cross join, each matched against a pattern: runs until the watchdog interrupts it.
        let tables = (1...7).map { "a_tx a\($0)" }.joined(separator: ", ")
        let key = (1...7).map { "a\($0).card" }.joined(separator: " || ")
        contract.queries.append(
            .init(
                id: "forever",
                sql:
                    "SELECT COUNT(*) AS n, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM \(tables) WHERE \(key) LIKE "
                    + "'%z%z%z%'",
                parameters: [],
                runners: ["analyst"],
                reads: ["a_tx"],
                computed: ["n"]
            )
        )
        contract.sortLists()
        try await QueryTests.open(harness, contract, parties: queries.parties)

        let pid = harness.fixture.enclave.processID
        let processName = ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let sampler = Task {
            var seen = Set<String>()
            while !Task.isCancelled {
                seen.formUnion(Self.foreignThreads(of: pid, processName: processName))
                try? await Task.sleep(for: .milliseconds(20))
            }
            return seen
        }

        func runFast(_ count: Int) async throws {
            for index in 0..<count {
                let answer = try await harness.host.runQuery(
                    index.isMultiple(of: 2)
                        ? try queries.request(contract, "count-by-merchant")
                        : try queries.request(contract, "count-above", parameters: ["min": "integer:0"])
                )
                let envelope = try ResultEnvelope(canonicalBytes: answer.result)
                let plaintext = try envelope.open(as: "analyst", key: queries.parties.recipient)
                let table = try JSONDecoder().decode(CleanRoomResultTable.self, from: Data(plaintext))
                #expect(table.rows == [["text:shop-big", "integer:40"]])
            }
        }

        try await runFast(40)
        // Cut off by the enclave's time limit (30 s): refused by name, and the enclave keeps serving.
        var refusal: String?
        do {
            _ = try await harness.host.runQuery(try queries.request(contract, "forever"))
        } catch let error as ServiceError {
            refusal = error.code
        }
        #expect(refusal == "timeLimit")
        try await runFast(20)

        sampler.cancel()
        var foreign = await sampler.value
        foreign.formUnion(Self.foreignThreads(of: pid, processName: processName))
        #expect(kill(pid, 0) == 0, "the enclave died")
        #expect(foreign.isEmpty, "threads other than the enclave runtime's and the watchdog: \(foreign.sorted())")
        let names = Self.threads(of: pid).map { $0.drop { $0 != ":" }.dropFirst() }
        let dispatchNamed = names.filter { $0.hasPrefix("com.apple") || $0.contains("qos") || $0.contains("ispatch") }
        #expect(dispatchNamed.isEmpty, "threads: \(names.sorted())")
        // The time limits ran on the watchdog's own thread.
        #expect(names.contains("cleanroom-watch"), "threads: \(names.sorted())")
    }
}
