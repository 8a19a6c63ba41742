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
            body: DataSetLoadTests.body(file)
        )
        _ = try await harness.host.loadDataSet(
            name: "a_tx",
            wrappedKey: try DataSetLoadTests.wrap(dataKey, for: opened)
        )
        return (harness, contract)
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
            #expect(answer.suppressedGroups == 1)

            // The result opens for the recipient; the small group is absent.
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
            #expect(receipt.suppressedGroups == 1)
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
            forged.suppressedGroups = 0
            #expect(throws: CleanRoomError(.badReceipt, "")) {
                try ReceiptChain.verify([receipt, forged], evidenceKey: Self.receiptKey)
            }

            // The status page's query log lists both runs.
            let status = try await HostStatus.of(harness.host)
            #expect(status.queries.map(\.id) == [answer.id, second.id])
            #expect(status.queries.map(\.suppressedGroups) == [1, 1])
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
