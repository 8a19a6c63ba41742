import Foundation
import TestSupport
import Testing

/// `enclave bench cleanroom` runs end to end on a small data set and reports every figure (no timing assertions: the
/// figures are the machine's, the test checks that they are there, sane, and that the clean room agreed with the
/// plaintext baseline).
@Suite("enclave bench cleanroom")
struct CleanRoomBenchCLITests {
    @Test func smallRunReportsEveryFigure() throws {
        let rows = 2000
        let run = try Fixtures.run(
            Fixtures.product("enclave"),
            ["bench", "cleanroom", "--rows", String(rows), "--rounds", "2", "--json"]
        )
        #expect(run.status == 0, "\(run.output)")
        let object = try printedJSON(run.output)
        #expect(object["rowsPerOwner"] as? Int == rows)
        #expect(object["owners"] as? Int == 2)
        #expect(object["rounds"] as? Int == 2)

        let ingest = try #require(object["ingest"] as? [String: Any])
        for key in [
            "cleanRoomRowsPerSecond", "plaintextRowsPerSecond", "cleanRoomOverPlaintext", "clientEncryptSeconds",
            "plaintextDefaultsRowsPerSecond",
        ] {
            let value = try #require(ingest[key] as? Double, "ingest.\(key)")
            #expect(value > 0 && value.isFinite, "ingest.\(key) = \(value)")
        }
        let sets = try #require(ingest["dataSets"] as? [[String: Any]])
        #expect(sets.compactMap { $0["dataSet"] as? String }.sorted() == ["a_tx", "b_tx"])
        for set in sets {
            #expect(set["rows"] as? Int == rows)
            let plaintext = try #require(set["plaintextBytes"] as? Int)
            let ciphertext = try #require(set["ciphertextBytes"] as? Int)
            #expect(ciphertext > plaintext, "the ciphertext carries a header and tags")
            for key in ["cleanRoomSeconds", "plaintextSeconds", "cleanRoomRowsPerSecond", "plaintextRowsPerSecond"] {
                #expect((set[key] as? Double ?? 0) > 0, "\(key) of \(set["dataSet"] ?? "?")")
            }
        }

        let queries = try #require(object["queries"] as? [[String: Any]])
        #expect(
            queries.compactMap { $0["query"] as? String }
                == ["a-spend-by-merchant", "b-daily", "shared-cards-by-category"]
        )
        for query in queries {
            let name = query["query"] as? String ?? "?"
            #expect(query["resultsAgree"] as? Bool == true, "\(name)")
            for side in ["cleanRoomMillis", "plaintextMillis", "plaintextDefaultsMillis"] {
                let timing = try #require(query[side] as? [String: Any], "\(name).\(side)")
                let median = try #require(timing["median"] as? Double)
                let p99 = try #require(timing["p99"] as? Double)
                #expect(median > 0 && p99 >= median, "\(name).\(side): median \(median), p99 \(p99)")
                #expect((timing["samples"] as? [Double])?.count == 2, "\(name).\(side) samples")
            }
            #expect((query["cleanRoomOverPlaintext"] as? Double ?? 0) > 0, "\(name) ratio")
            #expect((query["cleanRoomOverPlaintextDefaults"] as? Double ?? 0) > 0, "\(name) ratio to defaults")
            #expect((query["groupsReleased"] as? Int ?? 0) > 0, "\(name): some groups pass the threshold")
        }
        // Rare merchants (1% of rows, about two each) fall below 10 distinct cards.
        let merchants = try #require(queries.first)
        #expect((merchants["groupsSuppressed"] as? Int ?? 0) > 0, "small groups are suppressed")

        let memory = try #require(object["enclaveMemory"] as? [String: Any])
        let peak = try #require(memory["peakBytes"] as? Int)
        #expect(peak > 1 << 20 && peak < 8 << 30, "enclave VmHWM \(peak)")
        #expect((memory["residentBytesAtEnd"] as? Int ?? 0) <= peak)
        let targets = try #require(object["targets"] as? [String: Any])
        #expect(targets["queryCleanRoomOverPlaintextMax"] as? Double == 1.5)
        #expect(targets["ingestCleanRoomOverPlaintextMin"] as? Double == 0.5)
        let opaque = try #require(object["opaqueSQLPublishedOverhead"] as? [String: Any])
        #expect(opaque["min"] as? Double == 5.5)
        #expect((object["plaintextSettings"] as? String)?.contains("temp_store = MEMORY") == true)
        let load = try #require(object["loadAverage"] as? [String: Any])
        #expect((load["before"] as? String)?.split(separator: " ").count == 3)
    }
}
