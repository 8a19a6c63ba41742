import EnclaveCore
import Foundation
import TestSupport
import Testing

@testable import Attestation

/// The collateral JSON reader: strict RFC 8259, values decoded on demand.
@Suite("Collateral JSON reader")
struct JSONValueTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue(parsing: Array(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        let value = try parse(
            #" { "a" : [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00\"\\\/"}, "e": "" } "#
        )
        guard case .array(let items) = value["a"] else {
            Issue.record("no array")
            return
        }
        #expect(items == [.integer(1), .integer(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null])
        guard case .string(let text) = value["b"]?["c"] else {
            Issue.record("no string")
            return
        }
        #expect(text.decoded() == "d\né😀\"\\/")
        #expect(text.equals("d\né😀\"\\/"))
        guard case .string(let empty) = value["e"] else {
            Issue.record("no empty string")
            return
        }
        #expect(empty.decoded() == "" && empty.equals(""))
        #expect(value["missing"] == nil)
    }

    @Test func agreesWithFoundationOnRealCollateral() throws {
        for path in ["sgx/phala-dcap-qvl/sgx_quote_collateral.json", "tdx/phala-dcap-qvl/tdx_quote_collateral.json"] {
            let bundle = try Vectors.bytes(path)
            let ours = try JSONValue(parsing: bundle)
            let theirs = try #require(try JSONSerialization.jsonObject(with: Data(bundle)) as? [String: Any])
            for (key, value) in theirs {
                guard let text = value as? String, case .string(let token) = ours[key] else {
                    Issue.record("\(key) differs")
                    continue
                }
                #expect(token.decoded() == text, "\(key)")
            }
        }
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", "1e", "-", "+1", ".5",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}b\"", "[1] [2]", "{} x",
        "{\"a\":1,\"a\":2}", "1e400", "[\"\\", "NaN",
    ])
    func refusesMalformedInput(_ text: String) {
        expectEnclaveError(.malformedInput, "\(text)") { try parse(text) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        expectEnclaveError(.malformedInput) { try JSONValue(parsing: [0x22, 0xC3, 0x28, 0x22]) }
        expectEnclaveError(.malformedInput) { try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
        let deep =
            String(repeating: "[", count: JSONValue.maxDepth + 1)
            + String(repeating: "]", count: JSONValue.maxDepth + 1)
        expectEnclaveError(.malformedInput) { try parse(deep) }
        let fine =
            String(repeating: "[", count: JSONValue.maxDepth - 1)
            + String(repeating: "]", count: JSONValue.maxDepth - 1)
        #expect(throws: Never.self) { try parse(fine) }
    }

    @Test func everyPrefixOfRealCollateralIsRefused() throws {
        let bundle = try Vectors.bytes("tdx/phala-dcap-qvl/tdx_quote_collateral.json")
        for length in stride(from: 0, to: bundle.count - 1, by: 97) {
            expectEnclaveError(.malformedInput) { try JSONValue(parsing: Array(bundle.prefix(length))) }
        }
    }

    @Test func duplicateKeysAreFoundInLargeObjectsToo() {
        let members = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(throws: Never.self) { try parse("{\(members)}") }
        expectEnclaveError(.malformedInput) { try parse("{\(members),\"k7\":1}") }
        // An escaped spelling of the same key is the same key.
        expectEnclaveError(.malformedInput) { try parse(#"{"ab":1,"\u0061b":2}"#) }
    }
}
