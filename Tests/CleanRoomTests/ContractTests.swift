import CleanRoom
import Crypto
import EnclaveCore
import Foundation
import Testing

@Suite("Clean room contract")
struct ContractTests {
    let fixture = Fixture()

    @Test("canonical bytes round-trip to the same bytes and ID")
    func roundTrip() throws {
        let contract = fixture.contract
        let bytes = contract.canonicalBytes
        let parsed = try Contract(canonicalBytes: bytes)
        #expect(parsed == contract)
        #expect(parsed.canonicalBytes == bytes)
        #expect(parsed.id == contract.id)
        #expect(parsed.id.bytes == Array(SHA256.hash(data: bytes)))
        // No whitespace, sorted keys.
        #expect(!bytes.contains(UInt8(ascii: " ")) || String(decoding: bytes, as: UTF8.self).contains("shared fraud"))
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("{\"dataSets\":"))
    }

    /// A contract may pin the one clean room build it accepts (review 6, E): the pin round-trips, a contract without
    /// it keeps its bytes and ID (no `uniqueID` key), and a pin that is not 64 lower-case hex digits is refused.
    @Test("an optional uniqueID pin round-trips; without it the bytes are unchanged; a malformed pin is refused")
    func uniqueIDPin() throws {
        let plain = fixture.contract
        #expect(!String(decoding: plain.canonicalBytes, as: UTF8.self).contains("uniqueID"))
        var pinned = plain
        let build = try Digest32(bytes: [UInt8](repeating: 0x5C, count: 32))
        pinned.enclave.uniqueID = build
        let bytes = pinned.canonicalBytes
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""uniqueID":"\#(build.hex)""#))
        let parsed = try Contract(canonicalBytes: bytes)
        #expect(parsed.enclave.uniqueID == build)
        #expect(parsed.canonicalBytes == bytes)
        #expect(parsed.id != plain.id)
        #expect(try Contract(canonicalBytes: plain.canonicalBytes).enclave.uniqueID == nil)
        let text = String(decoding: bytes, as: UTF8.self)
        for bad in [build.hex.uppercased(), String(build.hex.dropLast()), "zz" + build.hex.dropFirst(2)] {
            let changed = Array(text.replacingOccurrences(of: build.hex, with: bad).utf8)
            #expect(throws: CleanRoomError.self) { _ = try Contract(canonicalBytes: changed) }
        }
    }

    @Test("a readable spec (pretty, unsorted, PEM keys) becomes the same canonical contract")
    func specToCanonical() throws {
        let contract = fixture.contract
        guard case .object(var members) = contract.json, case .array(var parties) = members["parties"] else {
            Issue.record("contract JSON is not an object")
            return
        }
        parties.reverse()
        // One party's key as PEM.
        if case .object(var first) = parties[0] {
            first["signingKey"] = .string(fixture.keys("bank-b").publicKey.pemRepresentation)
            parties[0] = .object(first)
        }
        members["parties"] = .array(parties)
        let pretty = try JSONSerialization.data(
            withJSONObject: try JSONSerialization.jsonObject(with: Data(CanonicalJSON.object(members).canonicalBytes)),
            options: [.prettyPrinted]
        )
        let fromSpec = try Contract(spec: [UInt8](pretty))
        #expect(fromSpec.canonicalBytes == contract.canonicalBytes)
        #expect(fromSpec.id == contract.id)
        // The spec itself is not canonical.
        expectError(.nonCanonical) { _ = try Contract(canonicalBytes: [UInt8](pretty)) }
    }

    @Test("every prefix of a contract is refused as malformed")
    func prefixes() {
        let bytes = fixture.contract.canonicalBytes
        for length in stride(from: 0, to: bytes.count, by: 7) {
            expectError(.malformed) { _ = try Contract(canonicalBytes: Array(bytes[..<length])) }
        }
        expectError(.malformed) { _ = try Contract(canonicalBytes: bytes + [UInt8(ascii: "x")]) }
        expectError(.malformed) { _ = try Contract(canonicalBytes: Array("[1,2]".utf8)) }
    }

    @Test("non-canonical encodings of the same contract are refused")
    func nonCanonical() throws {
        let bytes = fixture.contract.canonicalBytes
        let text = String(decoding: bytes, as: UTF8.self)
        // Whitespace.
        expectError(.nonCanonical) { _ = try Contract(canonicalBytes: [UInt8](" ".utf8) + bytes) }
        expectError(.nonCanonical) {
            _ = try Contract(canonicalBytes: Array(text.replacingOccurrences(of: "\":", with: "\": ").utf8))
        }
        // An escape where a plain character is canonical.
        expectError(.nonCanonical) {
            _ = try Contract(canonicalBytes: Array(text.replacingOccurrences(of: "fraud", with: "fr\\u0061ud").utf8))
        }
        // Members out of order: move "version" to the front.
        let reordered = "{\"version\":1," + text.dropFirst().replacingOccurrences(of: ",\"version\":1", with: "")
        expectError(.nonCanonical) { _ = try Contract(canonicalBytes: Array(reordered.utf8)) }
        // A list out of order: swap the two data sets.
        var contract = fixture.contract
        contract.dataSets.reverse()
        expectError(.nonCanonical) { _ = try Contract(canonicalBytes: contract.canonicalBytes) }
        // A string not in NFC (e + combining acute).
        contract = fixture.contract
        contract.name = "caf\u{65}\u{301}"
        expectError(.nonCanonical) { _ = try Contract(canonicalBytes: contract.canonicalBytes) }
        // Leading zero, float, null.
        expectError(.malformed) {
            _ = try Contract(
                canonicalBytes: Array(text.replacingOccurrences(of: "\"version\":1", with: "\"version\":01").utf8)
            )
        }
        expectError(.malformed) {
            _ = try Contract(
                canonicalBytes: Array(text.replacingOccurrences(of: "\"version\":1", with: "\"version\":1.0").utf8)
            )
        }
        expectError(.malformed) {
            _ = try Contract(
                canonicalBytes: Array(text.replacingOccurrences(of: "\"version\":1", with: "\"version\":null").utf8)
            )
        }
    }

    @Test("unknown fields are refused, at the top and nested")
    func unknownFields() throws {
        let text = String(decoding: fixture.contract.canonicalBytes, as: UTF8.self)
        let top = text.replacingOccurrences(of: "\"version\":1}", with: "\"version\":1,\"zzz\":true}")
        expectError(.unknownField) { _ = try Contract(canonicalBytes: Array(top.utf8)) }
        let nested = text.replacingOccurrences(of: "\"identity\":\"card\"", with: "\"identity\":\"card\",\"j\":1")
        #expect(nested != text)
        expectError(.unknownField) { _ = try Contract(canonicalBytes: Array(nested.utf8)) }
        expectError(.unknownField) { _ = try Contract(spec: Array(top.utf8)) }
    }

    @Test("duplicate party names and duplicate JSON keys are refused")
    func duplicates() throws {
        var contract = fixture.contract
        contract.parties.append(
            .init(name: "bank-a", roles: [.analyst], signingKey: P256.Signing.PrivateKey().publicKey)
        )
        contract.sortLists()
        expectError(.invalidContract) { _ = try Contract(canonicalBytes: contract.canonicalBytes) }
        expectError(.invalidContract) { try contract.validate() }
        let text = String(decoding: fixture.contract.canonicalBytes, as: UTF8.self)
        let twice = text.replacingOccurrences(of: "\"version\":1}", with: "\"version\":1,\"version\":1}")
        expectError(.malformed) { _ = try Contract(canonicalBytes: Array(twice.utf8)) }
    }

    @Test("broken references are refused by name")
    func references() {
        var contract = fixture.contract
        contract.queries[0].runners = ["bank-a"]
        expectError(.invalidContract) { try contract.validate() }
        contract = fixture.contract
        contract.queries[0].reads = ["a_tx", "nope"]
        expectError(.invalidContract) { try contract.validate() }
        contract = fixture.contract
        contract.dataSets[0].identity = "secret"
        expectError(.invalidContract) { try contract.validate() }
        contract = fixture.contract
        contract.dataSets[0].name = "sqlite_master"
        expectError(.invalidContract) { try contract.validate() }
        contract = fixture.contract
        contract.outputRules[0].neverOutput = ["b_tx.card"]
        expectError(.invalidContract) { try contract.validate() }
    }

    @Test("compound SELECTs, NUL in SQL and columns named like SQLite's rowid are refused at drafting")
    func sqlRefusedAtDrafting() throws {
        try fixture.contract.validate()
        for (id, sql) in EngineTests.compoundCases {
            var contract = fixture.contract
            contract.queries[0].sql = sql
            do {
                try contract.validate()
                Issue.record("\(id): a compound SELECT was accepted")
            } catch {
                #expect(error.code == .invalidContract && error.reason.contains("compound"), "\(id): \(error)")
            }
        }
        var quoted = fixture.contract
        quoted.queries[0].sql = "SELECT merchant AS \"union\", 'values' AS v FROM a_tx -- UNION"
        try quoted.validate()
        var nul = fixture.contract
        nul.queries[0].sql = Fixture.sharedSQL + "\u{0} UNION ALL SELECT card, 1, 1000, 1000 FROM a_tx"
        expectError(.invalidContract) { try nul.validate() }
        var unterminated = fixture.contract
        unterminated.queries[0].sql = Fixture.sharedSQL + " AND 'x"
        expectError(.invalidContract) { try unterminated.validate() }
        for name in ["rowid", "OID", "_rowid_"] {
            var contract = fixture.contract
            contract.dataSets[0].columns.append(.init(name: name, type: .integer))
            expectError(.invalidContract) { try contract.validate() }
        }
    }

    @Test("SQL tokens: cut where SQLite cuts; every prefix of hostile SQL tokenizes without a crash")
    func sqlTokens() {
        let tokens = Contract.SQLTokens("SELECT 'a''UNION' AS [b UNION], \"c\"\"UNION\" FROM t /* UNION */ -- UNION")
        #expect(tokens.compoundOperator == nil)
        #expect(
            tokens.tokens.map(\.kind) == [
                .word, .string, .word, .quotedIdentifier, .punctuation, .quotedIdentifier, .word, .word,
            ]
        )
        #expect(tokens.identifier(tokens.tokens[5]) == "c\"union")
        #expect(Contract.SQLTokens("SELECT a FROM t \u{FEFF}union SELECT b FROM t").compoundOperator == "UNION")
        #expect(Contract.SQLTokens("SELECT a\u{FEFF}union FROM t").compoundOperator == nil)
        #expect(Contract.SQLTokens("SELECT (a) FROM (VALUES (1))").compoundOperator == "VALUES")
        #expect(Contract.SQLTokens("SELECT 1e5, 0x1F, 1_000, .5 FROM t").illegal == nil)
        #expect(Contract.SQLTokens("SELECT 1union FROM t").illegal != nil)
        #expect(Contract.SQLTokens("SELECT :p(') FROM t").illegal != nil)  // no TCL variables: ' opens a string
        let depths = Contract.SQLTokens("SELECT (SELECT x FROM (t)) FROM t").tokens.map(\.depth)
        #expect(depths == [0, 0, 1, 1, 1, 1, 2, 1, 0, 0, 0])
        for (_, sql) in EngineTests.compoundCases + [("shared", Fixture.sharedSQL)] {
            let bytes = Array(sql.utf8)
            for length in 0...bytes.count {
                _ = Contract.SQLTokens(String(decoding: bytes[..<length], as: UTF8.self)).compoundOperator
            }
            #expect(Contract.SQLTokens(sql).illegal == nil, "\(sql)")
        }
    }

    @Test("a contract is active only when every party signed")
    func signedByAll() throws {
        let contract = fixture.contract
        let all = try fixture.signatures(contract)
        let active = try ContractState.evaluate(contract, signatures: all)
        #expect(active.phase == .active)
        #expect(active.signedBy == ["analyst", "bank-a", "bank-b"])
        try active.requireActive()

        let draft = try ContractState.evaluate(contract, signatures: Array(all.prefix(2)))
        #expect(draft.phase == .draft)
        #expect(draft.missing == ["bank-b"])
        expectError(.notActive) { try draft.requireActive() }
        let unsigned = try ContractState.evaluate(contract, signatures: [])
        expectError(.notActive) { try unsigned.requireActive() }

        // Signature documents round-trip canonically.
        for signature in all {
            #expect(try ContractSignature(canonicalBytes: signature.canonicalBytes) == signature)
        }
        expectError(.invalidContract) { _ = try ContractState.evaluate(contract, signatures: all + [all[0]]) }
    }

    @Test("a signature by a non-party, by the wrong key or over another contract is refused")
    func badSignatures() throws {
        let contract = fixture.contract
        let stranger = P256.Signing.PrivateKey()
        // Not a party: the signer refuses to sign, and a forged document naming a stranger is refused.
        expectError(.notAParty) { _ = try ContractSignature(signing: contract, as: "mallory", key: stranger) }
        let message = ContractSignature.message(contractID: contract.id)
        let forged = ContractSignature(
            contractID: contract.id,
            party: "mallory",
            signature: Array(try stranger.signature(for: message).rawRepresentation)
        )
        expectError(.notAParty) { try forged.verify(for: contract) }
        // A party's name with someone else's key.
        let impostor = ContractSignature(
            contractID: contract.id,
            party: "bank-a",
            signature: Array(try stranger.signature(for: message).rawRepresentation)
        )
        expectError(.badSignature) { try impostor.verify(for: contract) }
        expectError(.badSignature) {
            _ = try ContractState.evaluate(
                contract,
                signatures: try fixture.signatures(contract, by: ["analyst", "bank-b"]) + [impostor]
            )
        }
        // Over another contract (one byte of the name changed).
        var other = contract
        other.name += "!"
        let otherSignature = try ContractSignature(signing: other, as: "bank-a", key: fixture.bankA)
        expectError(.wrongContract) { try otherSignature.verify(for: contract) }
        // Bit flip in the signature.
        var flipped = try ContractSignature(signing: contract, as: "bank-a", key: fixture.bankA)
        flipped.signature[10] ^= 1
        expectError(.badSignature) { try flipped.verify(for: contract) }
    }

    @Test("any party can halt; a halted contract runs nothing")
    func halt() throws {
        let contract = fixture.contract
        let all = try fixture.signatures(contract)
        let halt = try HaltStatement(halting: contract, as: "bank-b", reason: "audit", key: fixture.bankB)
        #expect(try HaltStatement(canonicalBytes: halt.canonicalBytes) == halt)
        let state = try ContractState.evaluate(contract, signatures: all, halts: [halt])
        #expect(state.phase == .halted)
        expectError(.halted) { try state.requireActive() }
        // A halt statement with a tampered reason or by a stranger is refused.
        var tampered = halt
        tampered.reason = "never mind"
        expectError(.badSignature) { _ = try ContractState.evaluate(contract, signatures: all, halts: [tampered]) }
        var stranger = halt
        stranger.party = "mallory"
        expectError(.notAParty) { try stranger.verify(for: contract) }
        var other = contract
        other.name += "!"
        let otherHalt = try HaltStatement(halting: other, as: "bank-b", reason: "x", key: fixture.bankB)
        expectError(.wrongContract) { try otherHalt.verify(for: contract) }
    }

    @Test("canonical JSON: escapes, surrogates and limits")
    func canonicalJSON() throws {
        let value = CanonicalJSON.object(["b": .string("a\"\\\n\u{1}é😀"), "a": .array([.integer(-5), .bool(true)])])
        let bytes = value.canonicalBytes
        #expect(String(decoding: bytes, as: UTF8.self) == "{\"a\":[-5,true],\"b\":\"a\\\"\\\\\\n\\u0001é😀\"}")
        #expect(try CanonicalJSON.parseCanonical(bytes) == value)
        #expect(try CanonicalJSON.parse(Array("\"\\ud83d\\ude00\"".utf8)) == .string("😀"))
        #expect(throws: CleanRoomError(.malformed, "")) { try CanonicalJSON.parse(Array("\"\\ud83d\"".utf8)) }
        #expect(throws: CleanRoomError(.malformed, "")) { try CanonicalJSON.parse(Array("-0x".utf8)) }
        #expect(throws: CleanRoomError(.malformed, "")) { try CanonicalJSON.parse(Array("99999999999999999999".utf8)) }
        #expect(throws: CleanRoomError(.malformed, "")) { try CanonicalJSON.parse([0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: CleanRoomError(.limitExceeded, "")) { try CanonicalJSON.parse(Array(deep.utf8)) }
    }
}
