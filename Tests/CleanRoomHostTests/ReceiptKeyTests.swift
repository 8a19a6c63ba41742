import Attestation
import CleanRoom
import CleanRoomHost
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import TestSupport
import Testing

/// The receipt key: a P-256 signing key of its own, made at open beside the key agreement key and bound by the same
/// evidence (`receiptKey` in the runtime data). Receipts verify only with it: not with the key data keys are wrapped
/// to, not with any other key.
@Suite("Clean room receipt key", .serialized)
struct ReceiptKeyTests {
    @Test func receiptsAreSignedByTheAttestedReceiptKeyAlone() async throws {
        let queries = QueryTests()
        let (harness, contract) = try await queries.loaded()
        defer { Task { await harness.close() } }
        let answer = try await harness.host.runQuery(try queries.request(contract, "count-by-merchant"))
        let receipt = try Receipt(canonicalBytes: answer.receipt)
        let bound = try receipt.boundEvidence()
        let quote = try DCAPQuote(bytes: bound.evidence.bytes)

        // The runtime data binds two different keys: the wrapping key and the receipt key.
        struct Runtime: Decodable { let keys: [WrapJWK] }
        let runtime = try JSONDecoder().decode(Runtime.self, from: Data(bound.runtimeData))
        let wrapping = try #require(runtime.keys.first)
        guard case .p256(let agreement) = try wrapping.wrapTarget() else {
            Issue.record("the wrapping key is not P-256")
            return
        }
        let attested = try receipt.attestedKey(reportData: quote.reportData, runtimeData: bound.runtimeData)
        #expect(attested.rawRepresentation != agreement.rawRepresentation)
        try ReceiptChain.verify([receipt]) { _ in attested }

        // The receipt does not verify with the wrapping key (what signed receipts before).
        let asSigning = try P256.Signing.PublicKey(rawRepresentation: agreement.rawRepresentation)
        #expect(throws: CleanRoomError(.badReceipt, "")) {
            try ReceiptChain.verify([receipt]) { _ in asSigning }
        }
        // Re-signed by any other key, it is refused against the attested key.
        var forged = receipt
        try forged.sign(with: P256.Signing.PrivateKey())
        #expect(throws: CleanRoomError(.badReceipt, "")) {
            try ReceiptChain.verify([forged]) { _ in attested }
        }
    }

    @Test func theCLIVerifiesReceiptsAgainstTheirEvidence() async throws {
        let queries = QueryTests()
        let (harness, contract) = try await queries.loaded()
        defer { Task { await harness.close() } }
        let first = try await harness.host.runQuery(try queries.request(contract, "count-by-merchant"))
        let second = try await harness.host.runQuery(try queries.request(contract, "count-by-merchant"))
        let directory = try Fixtures.temporaryDirectory()
        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = directory + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let contractPath = try write("contract.json", contract.canonicalBytes)
        let paths = [try write("r0.json", first.receipt), try write("r1.json", second.receipt)]
        let cli = Fixtures.product("enclave")
        let ok = try Fixtures.run(
            cli,
            ["cleanroom", "receipt", "verify", "--allow-simulated", "--contract", contractPath] + paths
        )
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("receipt 1: contract \(contract.id.hex)"), "\(ok.output)")
        // Simulated evidence is refused unless allowed (the policy fails closed).
        let strict = try Fixtures.run(cli, ["cleanroom", "receipt", "verify", "--contract", contractPath] + paths)
        #expect(strict.status != 0)
        #expect(strict.output.contains("badReceipt"), "\(strict.output)")
        // A receipt re-signed by another key is refused.
        var forged = try Receipt(canonicalBytes: second.receipt)
        try forged.sign(with: P256.Signing.PrivateKey())
        let forgedPath = try write("forged.json", forged.canonicalBytes)
        let refused = try Fixtures.run(
            cli,
            ["cleanroom", "receipt", "verify", "--allow-simulated", "--contract", contractPath, paths[0], forgedPath]
        )
        #expect(refused.status != 0)
        #expect(refused.output.contains("badReceipt"), "\(refused.output)")
        #expect(refused.output.contains("signature does not verify"), "\(refused.output)")
        // Mid-chain: the second receipt after the first.
        let after = try Fixtures.run(
            cli,
            ["cleanroom", "receipt", "verify", "--allow-simulated", "--contract", contractPath, "--after", paths[0]]
                + [paths[1]]
        )
        #expect(after.status == 0, "\(after.output)")
        #expect(after.output.contains("receipt 1: contract \(contract.id.hex)"), "\(after.output)")
        // A v1 receipt (it carried the count of suppressed groups) is refused by name; as --after it is read for its
        // digest only (here the first receipt made v1, which the second does not link to).
        guard case .object(var members) = try CanonicalJSON.parseCanonical(first.receipt) else {
            throw CleanRoomError(.malformed, "a receipt is not an object")
        }
        members["version"] = nil
        members["suppressedGroups"] = .integer(1)
        let v1 = try write("v1.json", CanonicalJSON.object(members).canonicalBytes)
        let outdated = try Fixtures.run(
            cli,
            ["cleanroom", "receipt", "verify", "--allow-simulated", "--contract", contractPath, v1]
        )
        #expect(outdated.status == 1, "\(outdated.output)")
        #expect(outdated.output.contains("formatOutdated"), "\(outdated.output)")
        let crossing = try Fixtures.run(
            cli,
            ["cleanroom", "receipt", "verify", "--allow-simulated", "--contract", contractPath, "--after", v1]
                + [paths[1]]
        )
        #expect(crossing.status == 1, "\(crossing.output)")
        #expect(crossing.output.contains("receipt 1: does not follow receipt 0"), "\(crossing.output)")
    }

    @Test func runtimeDataWithoutAReceiptKeyOrOfAnotherContractIsRefused() throws {
        let receipt = try #require(try Self.sampleReceipt())
        let key = P256.Signing.PrivateKey().publicKey.rawRepresentation
        func runtime(_ contract: String, receiptKey: Bool) -> [UInt8] {
            var text = #"{"contract":""# + contract + #"","keys":[]"#
            if receiptKey {
                text +=
                    #","receiptKey":{"crv":"P-256","kty":"EC","x":""# + Base64URL.encode(Array(key.prefix(32)))
                    + #"","y":""# + Base64URL.encode(Array(key.suffix(32))) + #""}"#
            }
            return Array((text + "}").utf8)
        }
        let good = runtime(receipt.contractID.hex, receiptKey: true)
        let reportData = Array(SHA256.hash(data: good)) + [UInt8](repeating: 0, count: 32)
        #expect(try receipt.attestedKey(reportData: reportData, runtimeData: good).rawRepresentation == key)
        // Report data that does not bind the runtime data.
        #expect(throws: CleanRoomError(.badReceipt, "")) {
            try receipt.attestedKey(reportData: [UInt8](repeating: 0, count: 64), runtimeData: good)
        }
        // No receipt key (the old runtime data, only the wrapping key).
        let noKey = runtime(receipt.contractID.hex, receiptKey: false)
        #expect(throws: CleanRoomError(.badReceipt, "")) {
            try receipt.attestedKey(reportData: Array(SHA256.hash(data: noKey)), runtimeData: noKey)
        }
        // Another contract.
        let other = runtime(String(repeating: "ab", count: 32), receiptKey: true)
        #expect(throws: CleanRoomError(.badReceipt, "")) {
            try receipt.attestedKey(reportData: Array(SHA256.hash(data: other)), runtimeData: other)
        }
    }

    static func sampleReceipt() throws -> Receipt? {
        Receipt(
            contractID: try Digest32(bytes: Array(SHA256.hash(data: [1]))),
            queryID: "q",
            parameters: [:],
            inputs: [:],
            result: try Digest32(bytes: Array(SHA256.hash(data: [2]))),
            minIdentities: 3,
            epsilonSpentMilli: 0,
            time: 0,
            sequence: 0,
            previous: nil,
            evidence: []
        )
    }
}
