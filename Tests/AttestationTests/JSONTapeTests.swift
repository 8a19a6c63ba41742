import EnclaveCore
import Foundation
import TestSupport
import Testing

@testable import Attestation

/// The collateral documents' one-pass reader (`JSONTape`, and `JSONValue` built from it) against the tree reader it
/// replaced (`ReferenceJSONParser`): on real collateral and on byte mutations of it, both accept and refuse alike,
/// with the same message, and read the same values.
@Suite("Collateral JSON tape against the tree reader")
struct JSONTapeTests {
    static func documents() throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        for path in ["sgx/phala-dcap-qvl/sgx_quote_collateral.json", "tdx/phala-dcap-qvl/tdx_quote_collateral.json"] {
            let bundle = try Vectors.bytes(path)
            let collateral = try Collateral(dcapQVLJSON: bundle, cache: nil)
            result += [bundle, collateral.tcbInfoBytes, collateral.qeIdentityBytes]
        }
        result.append(
            Array(
                #"{"a":[1,-2,3.5,1e3,true,false,null,{}],"b":{"c":"d\n\u00e9\ud83d\ude00\"\\\/","é":"\u00e9"},"e":""}"#
                    .utf8
            )
        )
        return result
    }

    static func check(_ bytes: [UInt8]) {
        let reference = Result { () throws(EnclaveError) in try ReferenceJSONParser.parse(bytes) }
        let tape = Result { () throws(EnclaveError) in try JSONValue(parsing: bytes) }
        switch (reference, tape) {
        case (.success(let value), .success(let read)):
            #expect(value == read, "values differ: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        case (.failure(let expected), .failure(let actual)):
            #expect("\(expected)" == "\(actual)")
        default:
            Issue.record("one reader accepts what the other refuses: \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test func realCollateralReadsAlike() throws {
        for document in try Self.documents() { Self.check(document) }
    }

    @Test func mutatedCollateralIsReadAlikeOrRefusedAlike() throws {
        var generator = SGXExtensionsDifferentialTests.Generator(state: 0x7A9E_0002)
        let alphabet = Array(#"{}[]":,\/ bfnrtu0123456789.eE+-aé"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xFF]
        for document in try Self.documents() {
            for _ in 0..<400 {
                var bytes = document
                for _ in 0...generator.below(2) {
                    guard !bytes.isEmpty else { break }
                    let index = generator.below(bytes.count)
                    switch generator.below(5) {
                    case 0: bytes[index] = alphabet[generator.below(alphabet.count)]
                    case 1: bytes.remove(at: index)
                    case 2: bytes.insert(alphabet[generator.below(alphabet.count)], at: index)
                    case 3: bytes.removeSubrange(index...)
                    default:
                        let end = min(bytes.count, index + 1 + generator.below(40))
                        bytes.insert(contentsOf: bytes[index..<end], at: end)
                    }
                }
                Self.check(bytes)
            }
        }
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", "1e", "-", "+1", ".5",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}b\"", "[1] [2]", "{} x",
        "{\"a\":1,\"a\":2}", "1e400", "[\"\\", "NaN", "{\"\\u0061\":1,\"a\":2}", "\"\\u12\\\"\"", "\"\\ud83d\\ude00\"",
        "{\"e\\u0301\":1,\"\\u00e9\":2}", "{\"é\":1,\"e\u{301}\":2}", "123456789012345678", "-9007199254740993",
        "[[[[]]]]",
    ])
    func edgeCasesReadAlike(_ text: String) {
        Self.check(Array(text.utf8))
    }

    /// Two unescaped keys that are canonically equivalent (NFC "é" and NFD "e\u{301}") are the same key, in a small
    /// object as in a large one: the tape used to compare small objects' plain keys byte by byte and took them as two
    /// (while a large object's key set, and every reader that makes a `[String: …]`, merges them).
    @Test(arguments: [0, 20])
    func canonicallyEquivalentKeysAreDuplicates(_ members: Int) throws {
        let filler = (0..<members).map { "\"k\($0)\":\($0)," }.joined()
        let bytes = Array(("{" + filler + "\"é\":1,\"e\u{301}\":2}").utf8)
        let error = try #require(throws: EnclaveError.self) { try JSONValue(parsing: bytes) }
        #expect(error.code == .malformedInput)
        #expect("\(error)".contains("duplicate key \"é\""), "\(error)")
        Self.check(bytes)
    }

    /// A member is found only under the very bytes of its name: KELVIN SIGN (U+212A) is canonically equivalent to
    /// "K" as a Swift string, yet a reader asking for "K" must not take it, escaped or not (attack review: another
    /// spelling of a name must not stand in for it).
    @Test func membersAreFoundByTheirExactBytes() throws {
        for text in [#"{"\u212A":1}"#, "{\"\u{212A}\":1}"] {
            let tape = try JSONTape.document(Array(text.utf8))
            #expect(tape.member("K", of: 0) == nil, "\(text)")
            #expect(try JSONValue(parsing: Array(text.utf8))["K"] == nil, "\(text)")
            #expect(tape.member("\u{212A}", of: 0) != nil, "\(text)")
        }
        let escapedASCII = try JSONTape.document(Array(#"{"\u004B":1}"#.utf8))
        #expect(escapedASCII.member("K", of: 0) != nil)
    }

    @Test func largeObjectsAndDeepNestingReadAlike() {
        var members = (0..<40).map { "\"k\($0)\":\($0)" }
        Self.check(Array(("{" + members.joined(separator: ",") + "}").utf8))
        members.append("\"k\\u0031\":1")  // "k1" again, escaped, past the 16th member
        Self.check(Array(("{" + members.joined(separator: ",") + "}").utf8))
        for depth in [JSONValue.maxDepth - 1, JSONValue.maxDepth, JSONValue.maxDepth + 1] {
            Self.check(Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8))
        }
    }
}
