import CleanRoom
import Crypto
import EnclaveCore
import Testing

@Suite("Clean room results and receipts")
struct ReceiptTests {
    let fixture = Fixture()
    let receiptKey = P256.Signing.PrivateKey()

    @Test("a result opens only for a contract recipient with its key")
    func results() throws {
        let contract = fixture.contract
        let plaintext = Array("merchant,n\nm1,5\n".utf8)
        let envelope = try ResultEnvelope(
            sealing: plaintext,
            contract: contract,
            queryID: "shared-by-merchant",
            recipients: ["analyst"]
        )
        let parsed = try ResultEnvelope(canonicalBytes: envelope.canonicalBytes)
        #expect(parsed == envelope)
        #expect(try parsed.open(as: "analyst", key: fixture.recipient) == plaintext)
        // A recipient key that is not in the contract: nothing is encrypted to it.
        expectError(.unknownRecipient) {
            _ = try ResultEnvelope(sealing: plaintext, contract: contract, queryID: "q", recipients: ["bank-a"])
        }
        expectError(.unknownRecipient) { _ = try parsed.open(as: "bank-a", key: fixture.recipient) }
        // The wrong private key, a tampered ciphertext, or the copy relabelled as another query: refused.
        expectError(.dataTampered) { _ = try parsed.open(as: "analyst", key: Curve25519.KeyAgreement.PrivateKey()) }
        var tampered = parsed
        tampered.copies[0].ciphertext[0] ^= 1
        expectError(.dataTampered) { _ = try tampered.open(as: "analyst", key: fixture.recipient) }
        var relabelled = parsed
        relabelled.queryID = "other"
        expectError(.dataTampered) { _ = try relabelled.open(as: "analyst", key: fixture.recipient) }
    }

    func chain(_ count: Int) throws -> [Receipt] {
        var receipts: [Receipt] = []
        for index in 0..<count {
            var receipt = Receipt(
                contractID: fixture.contract.id,
                queryID: "shared-by-merchant",
                parameters: ["min_amount": .integer(50)],
                inputs: ["a_tx": try Digest32(bytes: [UInt8](repeating: 1, count: 32))],
                result: try Digest32(bytes: [UInt8](repeating: UInt8(index), count: 32)),
                minIdentities: 3,
                epsilonSpentMilli: 0,
                time: 1_700_000_000 + Int64(index),
                sequence: Int64(index),
                previous: receipts.last?.digest,
                evidence: [1, 2, 3]
            )
            try receipt.sign(with: receiptKey)
            receipts.append(receipt)
        }
        return receipts
    }

    @Test("a receipt chain verifies offline; tampering, reordering, dropping and the wrong key are refused")
    func receipts() throws {
        let receipts = try chain(3)
        let key = receiptKey.publicKey
        let evidence: (Receipt) throws(CleanRoomError) -> P256.Signing.PublicKey = { _ in key }
        try ReceiptChain.verify(receipts, evidenceKey: evidence)
        let parsed = try receipts.map { try Receipt(canonicalBytes: $0.canonicalBytes) }
        #expect(parsed == receipts)
        try ReceiptChain.verify(Array(receipts[1...]), after: receipts[0], evidenceKey: evidence)

        var tampered = receipts
        tampered[1].minIdentities = 2
        expectError(.badReceipt) { try ReceiptChain.verify(tampered, evidenceKey: evidence) }
        expectError(.badReceipt) { try ReceiptChain.verify([receipts[0], receipts[2]], evidenceKey: evidence) }
        expectError(.badReceipt) { try ReceiptChain.verify([receipts[1], receipts[0]], evidenceKey: evidence) }
        expectError(.badReceipt) { try ReceiptChain.verify(Array(receipts[1...]), evidenceKey: evidence) }
        let other = P256.Signing.PrivateKey().publicKey
        expectError(.badReceipt) { try ReceiptChain.verify(receipts, evidenceKey: { _ in other }) }
        // The evidence check is the caller's: its refusal stops verification.
        expectError(.wrongContract) {
            try ReceiptChain.verify(receipts) { (_: Receipt) throws(CleanRoomError) -> P256.Signing.PublicKey in
                throw CleanRoomError(.wrongContract, "evidence binds another contract")
            }
        }
        var text = String(decoding: receipts[0].canonicalBytes, as: UTF8.self)
        text = text.replacingOccurrences(of: "\"time\":", with: "\"zz\":1,\"time\":")
        expectError(.badReceipt) { _ = try Receipt(canonicalBytes: Array(text.utf8)) }
    }

    /// `receipts`' first one with `change` applied to its members, as a canonical document.
    func document(_ change: (inout [String: CanonicalJSON]) -> Void) throws -> [UInt8] {
        guard case .object(var members) = try CanonicalJSON.parseCanonical(try chain(1)[0].canonicalBytes) else {
            throw CleanRoomError(.malformed, "a receipt is not an object")
        }
        change(&members)
        return CanonicalJSON.object(members).canonicalBytes
    }

    @Test("receipts say nothing of the suppressed groups; a v1 receipt (which did) is refused by name")
    func receiptFormat() throws {
        let current = try chain(1)[0]
        let text = String(decoding: current.canonicalBytes, as: UTF8.self)
        #expect(text.contains("\"version\":2"))
        #expect(!text.lowercased().contains("suppress"), "\(text)")
        #expect(String(decoding: current.message.prefix(31), as: UTF8.self) == "EnclaveKit.cleanroom.receipt.v2")
        // v1: no version, a suppressedGroups count (refused before its signature is looked at).
        let v1 = try document {
            $0["version"] = nil
            $0["suppressedGroups"] = .integer(1)
        }
        expectError(.formatOutdated) { _ = try Receipt(canonicalBytes: v1) }
        expectError(.formatOutdated) { _ = try Receipt(canonicalBytes: try document { $0["version"] = .integer(1) }) }
        // A newer version, a version that is not a positive integer, no version at all, or a v2 receipt that carries
        // the count: not a receipt this build reads.
        for document in [
            try document { $0["version"] = .integer(3) },
            try document { $0["version"] = .string("2") },
            try document { $0["version"] = .integer(0) },
            try document { $0["version"] = nil },
            try document { $0["suppressedGroups"] = .integer(0) },
        ] {
            expectError(.badReceipt) { _ = try Receipt(canonicalBytes: document) }
        }
    }

    @Test("a chain that crossed the upgrade to v2 links to its last v1 receipt, read as a link only")
    func chainAcrossTheUpgrade() throws {
        let key = receiptKey.publicKey
        let evidence: (Receipt) throws(CleanRoomError) -> P256.Signing.PublicKey = { _ in key }
        // The last receipt the older build made (v1), then the first the new one makes, linked to its digest.
        let v1 = try document {
            $0["version"] = nil
            $0["suppressedGroups"] = .integer(1)
        }
        var next = try chain(1)[0]
        next.sequence = 1
        next.previous = try Digest32(bytes: Array(SHA256.hash(data: v1)))
        try next.sign(with: receiptKey)
        let link = try ReceiptLink(document: v1)
        #expect(link.sequence == 0 && link.contractID == fixture.contract.id)
        try ReceiptChain.verify([next], following: link, evidenceKey: evidence)
        // Another v1 document (one byte changed), or none at all: refused.
        let other = try document {
            $0["version"] = nil
            $0["suppressedGroups"] = .integer(2)
        }
        expectError(.badReceipt) {
            try ReceiptChain.verify([next], following: try ReceiptLink(document: other), evidenceKey: evidence)
        }
        expectError(.badReceipt) { try ReceiptChain.verify([next], following: nil, evidenceKey: evidence) }
        expectError(.badReceipt) { _ = try ReceiptLink(document: Array("{}".utf8)) }
        // A v2 receipt's link is the receipt's own.
        let current = try chain(1)[0]
        #expect(try ReceiptLink(document: current.canonicalBytes) == ReceiptLink(current))
        #expect(ReceiptLink(current).digest == current.digest)
    }
}
