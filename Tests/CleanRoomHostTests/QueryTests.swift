import Attestation
import AttestationService
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import KeyReleaseFormats
import Testing

/// Running queries: a runner's signed request runs an approved query in the enclave, the result comes out
/// encrypted to the contract's recipients with small groups suppressed, and a receipt signed by the key the
/// enclave's evidence binds is chained and stored; anything else is refused by the rule's name.
@Suite("Clean room queries", .serialized)
struct QueryTests {
    let parties = Parties()

    /// The test contract plus an approved query with an integer parameter.
    func contract(_ requirement: Contract.EnclaveRequirement) -> Contract {
        var contract = parties.contract(enclave: requirement)
        contract.queries.append(
            .init(
                id: "count-above",
                sql:
                    "SELECT merchant, COUNT(*) AS n, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx WHERE amount >= :min "
                    + "GROUP BY merchant",
                parameters: [.init(name: "min", type: .integer)],
                runners: ["analyst"],
                reads: ["a_tx"],
                computed: ["n"]
            )
        )
        contract.sortLists()
        return contract
    }

    /// A request for `queryID` by `runner`, signed with `key` (the runner's own key unless told).
    func request(
        _ contract: Contract,
        _ queryID: String,
        runner: String = "analyst",
        parameters: [String: String] = [:],
        key: P256.Signing.PrivateKey? = nil
    ) throws -> CleanRoomQueryRequest {
        let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let message = QueryRequestSigning.message(
            contractID: contract.id,
            queryID: queryID,
            runner: runner,
            parameters: parameters,
            nonce: nonce
        )
        let signature = try (key ?? parties.key(runner)).signature(for: message).rawRepresentation
        return CleanRoomQueryRequest(
            queryID: queryID,
            runner: runner,
            parameters: parameters,
            nonce: nonce,
            signature: Base64URL.encode(Array(signature))
        )
    }

    /// A harness whose clean room is open under `contract(_:)` with a_tx loaded: merchant shop-big has 10 distinct
    /// cards, shop-small 2 (below bank-a's minimum of 3).
    func loaded() async throws -> (CleanRoomHostRoutesTests.Harness, Contract) {
        let harness = try await CleanRoomHostRoutesTests.harness()
        let contract = contract(harness.fixture.requirement)
        try await Self.open(harness, contract, parties: parties)
        return (harness, contract)
    }

    /// Open the clean room of `harness` under `contract` (every party signs) and load a_tx as ``loaded()`` describes.
    static func open(_ harness: CleanRoomHostRoutesTests.Harness, _ contract: Contract, parties: Parties) async throws {
        _ = try await harness.host.submitContract(contract.canonicalBytes)
        for signature in try parties.signatures(contract) { _ = try await harness.host.submitSignature(signature) }
        let opened = try await harness.host.attestation()
        let dataKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        var csv = "card,merchant,amount\n"
        for index in 0..<40 { csv += "card-\(index % 10),shop-big,\(index)\n" }
        for index in 0..<6 { csv += "card-\(100 + index % 2),shop-small,\(index)\n" }
        let file = try DataFileEncryptor.encrypt(
            Array(csv.utf8),
            dataKey: SymmetricKey(data: dataKey),
            contractID: contract.id,
            dataSet: "a_tx",
            chunkSize: 4096
        )
        _ = try await harness.host.storeDataSet(
            name: "a_tx",
            ownerSignature: try parties.uploadSignature(file, dataSet: "a_tx", contract: contract),
            sha256: Parties.sha256(file),
            body: DataSetLoadTests.body(file)
        )
        _ = try await harness.host.loadDataSet(
            name: "a_tx",
            wrappedKey: try DataSetLoadTests.wrap(dataKey, for: opened)
        )
    }

    /// The receipt key the receipt's evidence attests: the evidence must be the clean room's (a DCAP quote whose
    /// report data starts with SHA-256 of the runtime data) and the runtime data must name the receipt's contract.
    static func receiptKey(_ receipt: Receipt) throws(CleanRoomError) -> P256.Signing.PublicKey {
        let bound = try receipt.boundEvidence()
        guard let quote = try? DCAPQuote(bytes: bound.evidence.bytes) else {
            throw CleanRoomError(.badReceipt, "the evidence is not a DCAP quote")
        }
        return try receipt.attestedKey(reportData: quote.reportData, runtimeData: bound.runtimeData)
    }

    @Test func anApprovedQueryAnswersAnEncryptedResultAndAChainedReceipt() async throws {
        let (harness, contract) = try await loaded()
        defer { Task { await harness.close() } }
        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            let body = try JSONEncoder().encode(try request(contract, "count-by-merchant"))
            let posted = try await CleanRoomHostRoutesTests.send(client, .post, "/queries", Array(body))
            #expect(posted.status == 200, "\(posted.text)")
            let answer = try JSONDecoder().decode(CleanRoomQueryAnswer.self, from: Data(posted.text.utf8))
            // The result opens for the recipient; the small group is absent (the answer does not say how many were).
            let fetched = try await CleanRoomHostRoutesTests.send(client, .get, "/results/\(answer.id)")
            #expect(fetched.status == 200)
            #expect(Array(fetched.text.utf8) == answer.result)
            let envelope = try ResultEnvelope(canonicalBytes: Array(fetched.text.utf8))
            let plaintext = try envelope.open(as: "analyst", key: parties.recipient)
            let table = try JSONDecoder().decode(CleanRoomResultTable.self, from: Data(plaintext))
            #expect(table.columns == ["merchant", "n"])
            #expect(table.rows == [["text:shop-big", "integer:40"]])
            #expect(!String(decoding: answer.result, as: UTF8.self).contains("shop-"), "the result is ciphertext")

            // The receipt: stored, signed by the key the enclave's evidence binds, its evidence the enclave's.
            let receiptText = try await CleanRoomHostRoutesTests.send(client, .get, "/receipts/\(answer.id)")
            #expect(receiptText.status == 200)
            let receipt = try Receipt(canonicalBytes: Array(receiptText.text.utf8))
            #expect(receipt.digest.hex == answer.id)
            #expect(receipt.result == envelope.digest)
            #expect(receipt.minIdentities == 3)
            #expect(receipt.sequence == 0)
            #expect(receipt.inputs["a_tx"] != nil)
            let evidence = try JSONDecoder().decode(CleanRoomOpened.self, from: Data(receipt.evidence))
            #expect(evidence == (try await harness.host.attestation()))
            try ReceiptChain.verify([receipt], evidenceKey: Self.receiptKey)

            // A second run chains to the first; a changed receipt no longer verifies.
            let second = try await harness.host.runQuery(
                try request(contract, "count-above", parameters: ["min": "integer:0"])
            )
            let next = try Receipt(canonicalBytes: second.receipt)
            #expect(next.parameters == ["min": "integer:0"])
            try ReceiptChain.verify([receipt, next], evidenceKey: Self.receiptKey)
            var forged = next
            forged.minIdentities = 2
            #expect(throws: CleanRoomError(.badReceipt, "")) {
                try ReceiptChain.verify([receipt, forged], evidenceKey: Self.receiptKey)
            }

            // The status page's query log lists both runs.
            let status = try await HostStatus.of(harness.host)
            #expect(status.queries.map(\.id) == [answer.id, second.id])
            let page = try await CleanRoomHostRoutesTests.send(client, .get, "/")
            #expect(page.text.contains(answer.id) && page.text.contains("count-above"))
            let missing = try await CleanRoomHostRoutesTests.send(
                client,
                .get,
                "/receipts/\(String(repeating: "0", count: 64))"
            )
            #expect(missing.status == 404)
        }
    }

    /// A JSON object's members but `dropped`, as sorted JSON text (what two runs are compared on).
    static func members(_ bytes: [UInt8], without dropped: Set<String>) throws -> String {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        var kept = object.filter { !dropped.contains($0.key) }
        // The receipt's evidence (the same for both runs), by its digest: it is long.
        if let evidence = kept["evidence"] as? String {
            kept["evidence"] = SHA256.hash(data: Data(evidence.utf8)).map { String(format: "%02x", $0) }.joined()
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
    }

    /// What the host and the public see of a run, with the run's own fields (its ID, time, sequence, parameters, the
    /// result's ciphertext and digest, the link and the signature) taken out.
    struct Seen: Equatable, CustomStringConvertible {
        var answer: String
        var receipt: String
        var record: [String]
        var status: String
        var pageRow: String
        var resultSize: Int

        var description: String {
            "answer \(answer)\nreceipt \(receipt)\nrecord \(record)\nstatus \(status)\npage \(pageRow)\nsize \(resultSize)"
        }
    }

    /// Review finding F1: the number of groups below the minimum must never leave the enclave. `count-above` with
    /// :min 5 matches one row of shop-small (card-101's amount 5: a group of one card, suppressed), with :min 6
    /// none; a count of suppressed groups would tell the host, and anyone reading the status page or the receipts,
    /// whether card-101 spent at least 5 (a binary search on :min finds the amount, below the threshold). Both runs
    /// must look the same from outside the enclave: the answer, the receipt's signed bytes (GET /receipts/{id}),
    /// the store's row (and the database file), GET /status and the status page, apart from the run's own fields.
    @Test func theCountOfSuppressedGroupsNeverLeavesTheEnclave() async throws {
        let (harness, contract) = try await loaded()
        defer { Task { await harness.close() } }
        let app = Application(router: CleanRoomServer.router(host: harness.host))
        try await app.test(.router) { client in
            var runs: [(id: String, answer: String, receipt: String, record: [String], size: Int)] = []
            for (min, n) in [("integer:5", "integer:35"), ("integer:6", "integer:34")] {
                let body = try JSONEncoder().encode(try request(contract, "count-above", parameters: ["min": min]))
                let posted = try await CleanRoomHostRoutesTests.send(client, .post, "/queries", Array(body))
                #expect(posted.status == 200, "\(posted.text)")
                let answer = try JSONDecoder().decode(CleanRoomQueryAnswer.self, from: Data(posted.text.utf8))
                // Suppression, proved by the rows that come out: shop-small never does, whichever :min.
                let plaintext = try ResultEnvelope(canonicalBytes: answer.result).open(
                    as: "analyst",
                    key: parties.recipient
                )
                let table = try JSONDecoder().decode(CleanRoomResultTable.self, from: Data(plaintext))
                #expect(table.rows == [["text:shop-big", n]], "\(min)")
                // GET /receipts/{id} serves the answer's receipt as it is.
                let served = try await CleanRoomHostRoutesTests.send(client, .get, "/receipts/\(answer.id)")
                #expect(served.status == 200)
                #expect(Array(served.text.utf8) == answer.receipt)
                let record = try #require(try await harness.store.run(answer.id))
                #expect(record.result == answer.result && record.receipt == answer.receipt)
                let own: Set = ["id", "sequence", "time", "result", "receipt"]
                runs.append(
                    (
                        answer.id,
                        try Self.members(Array(posted.text.utf8), without: own),
                        try Self.members(
                            answer.receipt,
                            without: ["parameters", "result", "time", "sequence", "previous", "signature"]
                        ),
                        Mirror(reflecting: record).children.filter { !own.contains($0.label ?? "") }.map {
                            "\($0.label ?? ""): \($0.value)"
                        },
                        answer.result.count
                    )
                )
            }
            // The status (GET /status) and the status page (GET /), per run.
            let statusText = try await CleanRoomHostRoutesTests.send(client, .get, "/status")
            let status = try JSONDecoder().decode(HostStatus.self, from: Data(statusText.text.utf8))
            let statusObject = try #require(
                try JSONSerialization.jsonObject(with: Data(statusText.text.utf8)) as? [String: Any]
            )
            let logged = try #require(statusObject["queries"] as? [Any])
            #expect(status.queries.map(\.id) == runs.map(\.id))
            let page = try await CleanRoomHostRoutesTests.send(client, .get, "/")
            let format = ISO8601DateFormatter()
            var seen: [Seen] = []
            for (index, run) in runs.enumerated() {
                let entry = try #require(status.queries.first { $0.id == run.id })
                let row = try #require(page.text.split(separator: "\n").first { $0.contains(run.id) })
                let time = format.string(from: Date(timeIntervalSince1970: TimeInterval(entry.time)))
                seen.append(
                    Seen(
                        answer: run.answer,
                        receipt: run.receipt,
                        record: run.record,
                        status: try Self.members(
                            Array(try JSONSerialization.data(withJSONObject: logged[index])),
                            without: ["id", "sequence", "time"]
                        ),
                        pageRow: row.replacingOccurrences(of: run.id, with: "ID")
                            .replacingOccurrences(of: time, with: "TIME")
                            .replacingOccurrences(of: "<td>\(entry.sequence)</td>", with: "<td>SEQ</td>"),
                        resultSize: run.size
                    )
                )
            }
            #expect(seen[0] == seen[1])
            #expect(!seen[0].description.lowercased().contains("suppress"), "\(seen[0])")
            // Nor does any file of the host's store (its database among them) hold such a column.
            #expect(FileManager.default.fileExists(atPath: harness.directory + "/cleanroom.sqlite"))
            let files = try CleanRoomHostRoutesTests.filesContaining(Array("suppressed".utf8), under: harness.directory)
            #expect(files.isEmpty, "\(files)")
        }
    }

    @Test func refusesUnapprovedQueriesUnallowedRunnersBadSignaturesWrongTypesAndReplays() async throws {
        let (harness, contract) = try await loaded()
        defer { Task { await harness.close() } }
        func refusal(_ request: CleanRoomQueryRequest) async -> String? {
            do {
                _ = try await harness.host.runQuery(request)
                return nil
            } catch let error as ServiceError {
                return error.code
            } catch {
                return "\(error)"
            }
        }
        // A query ID not in the contract.
        #expect(await refusal(try request(contract, "select-everything")) == "queryNotApproved")
        // A party the query does not allow (bank-a signs its own request correctly).
        #expect(await refusal(try request(contract, "count-by-merchant", runner: "bank-a")) == "runnerNotAllowed")
        // A request signed by someone else than the runner it names.
        let forged = try request(contract, "count-by-merchant", key: P256.Signing.PrivateKey())
        #expect(await refusal(forged) == "badSignature")
        // A genuine request whose parameters were changed after signing.
        var changed = try request(contract, "count-above", parameters: ["min": "integer:0"])
        changed.parameters["min"] = "integer:100"
        #expect(await refusal(changed) == "badSignature")
        // A parameter of the wrong type, signed.
        #expect(await refusal(try request(contract, "count-above", parameters: ["min": "text:5"])) == "badParameter")
        #expect(await refusal(try request(contract, "count-above", parameters: ["min": "integer:x"])) == "badParameter")
        #expect(await refusal(try request(contract, "count-above")) == "badParameter")
        // A signed request replayed.
        let once = try request(contract, "count-by-merchant")
        _ = try await harness.host.runQuery(once)
        #expect(await refusal(once) == "replay")
        // Nothing refused was stored: one run only.
        #expect(try await harness.store.runs().count == 1)
        // Once a party halts the contract, nothing runs, even a correctly signed approved query.
        _ = try await harness.host.submitHalt(try parties.halt(contract, by: "bank-b"))
        #expect(await refusal(try request(contract, "count-by-merchant")) == "halted")
        #expect(try await harness.store.runs().count == 1)
    }
}
