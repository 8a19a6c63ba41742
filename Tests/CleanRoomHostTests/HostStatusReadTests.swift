import CleanRoom
import CleanRoomHost
import Foundation
import TestSupport
import Testing

/// Finding E: an anonymous `GET /` or `GET /status` must not read the stored runs' results and receipts (up to 1000
/// runs of up to a million rows each). The status reads run summaries only: what it reads does not grow with the
/// results.
@Suite("Clean room status reads summaries")
struct HostStatusReadTests {
    /// Records in memory that count the result and receipt bytes they hand out.
    final class CountingRecords: CleanRoomRecords, @unchecked Sendable {
        private let lock = NSLock()
        private var contractBytes: [UInt8]?
        private var documentsByKind: [String: [String: [UInt8]]] = [:]
        private var sets: [String: CleanRoomStore.DataSetRecord] = [:]
        private var stored: [CleanRoomStore.RunRecord] = []
        private var blobBytes = 0

        /// Result and receipt bytes handed out so far.
        var blobBytesRead: Int { lock.withLock { blobBytes } }

        private func locked<T>(_ body: () throws -> T) rethrows -> T { try lock.withLock(body) }
        private static func key(_ kind: CleanRoomStore.PartyDocument) -> String {
            switch kind {
            case .signature: "signature"
            case .halt: "halt"
            }
        }

        func contract() async throws -> [UInt8]? { locked { contractBytes } }
        func setContract(_ bytes: [UInt8], id: String) async throws -> Bool {
            locked {
                guard contractBytes == nil else { return false }
                contractBytes = bytes
                return true
            }
        }
        func documents(_ kind: CleanRoomStore.PartyDocument) async throws -> [[UInt8]] {
            locked { (documentsByKind[Self.key(kind)] ?? [:]).sorted { $0.key < $1.key }.map(\.value) }
        }
        func putDocument(
            _ kind: CleanRoomStore.PartyDocument,
            party: String,
            _ bytes: [UInt8],
            received: Date
        )
            async throws
        { locked { documentsByKind[Self.key(kind), default: [:]][party] = bytes } }
        func putDataSet(_ record: CleanRoomStore.DataSetRecord) async throws { locked { sets[record.name] = record } }
        func dataSets() async throws -> [CleanRoomStore.DataSetRecord] {
            locked { sets.values.sorted { $0.name < $1.name } }
        }
        func putRun(_ run: CleanRoomStore.RunRecord) async throws { locked { stored.append(run) } }
        func run(_ id: String) async throws -> CleanRoomStore.RunRecord? {
            locked {
                let run = stored.first { $0.id == id }
                blobBytes += (run?.result.count ?? 0) + (run?.receipt.count ?? 0)
                return run
            }
        }
        func runs(limit: Int) async throws -> [CleanRoomStore.RunRecord] {
            locked {
                let runs = Array(stored.suffix(limit))
                blobBytes += runs.reduce(0) { $0 + $1.result.count + $1.receipt.count }
                return runs
            }
        }
        func runSummaries(limit: Int) async throws -> [CleanRoomStore.RunSummary] {
            locked { stored.suffix(limit).map(CleanRoomStore.RunSummary.init) }
        }
        func close() async throws {}
    }

    static func run(_ sequence: Int64, resultBytes: Int) -> CleanRoomStore.RunRecord {
        CleanRoomStore.RunRecord(
            id: String(format: "%064x", sequence),
            queryID: "q\(sequence)",
            sequence: sequence,
            time: Date(timeIntervalSince1970: 1_700_000_000 + Double(sequence)),
            result: [UInt8](repeating: 0x41, count: resultBytes),
            receipt: [UInt8](repeating: 0x42, count: 1000)
        )
    }

    @Test func statusReadsNoResultOrReceipt() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let records = CountingRecords()
        let store = try CleanRoomStore.open(directory: directory, records: records)
        let fixture = try await CleanRoomEnclaveFixture.load(ocalls: CleanRoomHost.ocalls(directory: directory))
        let host = try await CleanRoomHost(store: store, enclave: fixture.enclave)
        let contract = Parties().contract(enclave: fixture.requirement)
        _ = try await host.submitContract(contract.canonicalBytes)
        let runs = (1...3).map { Self.run(Int64($0), resultBytes: 4 << 20) }
        for run in runs { try await store.putRun(run) }

        let status = try await HostStatus.of(host)
        #expect(status.queries.map(\.id) == runs.map(\.id))
        #expect(status.queries.map(\.queryID) == ["q1", "q2", "q3"])
        #expect(status.queries.map(\.time) == runs.map { Int64($0.time.timeIntervalSince1970) })
        // Nothing of the 12 MiB of results (nor the receipts) was read for the status.
        #expect(records.blobBytesRead == 0)
        _ = StatusPage.render(status)
        #expect(records.blobBytesRead == 0)
    }

    /// The SQLite store's summaries are its runs without the blobs, latest `limit` ones, oldest first.
    @Test func sqliteSummariesMatchTheRuns() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/cleanroom"
        let store = try await CleanRoomStore.open(directory: directory)
        defer { Task { try? await store.close() } }
        #expect(try await store.runSummaries().isEmpty)
        let runs = (1...4).map { Self.run(Int64($0), resultBytes: 1 << 20) }
        for run in runs { try await store.putRun(run) }
        #expect(try await store.runSummaries() == runs.map(CleanRoomStore.RunSummary.init))
        #expect(try await store.runSummaries(limit: 2) == runs[2...].map(CleanRoomStore.RunSummary.init))
        #expect(try await store.runSummaries() == (try await store.runs()).map(CleanRoomStore.RunSummary.init))
    }
}
