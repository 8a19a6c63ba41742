import Foundation
import TestSupport
import Testing

@testable import CleanRoom

/// `CanonicalJSON`'s reader (the shared tokenizer, EnclaveCore's `JSONTape`, under the clean room's rules) on
/// `JSONCorpus`, against an independent reference, Foundation's `JSONSerialization`: everything it accepts
/// Foundation reads as the same value (no `null`, integers only), what it refuses as too deep Foundation shows is
/// deeper than `CanonicalJSON/maxDepth`, nothing deeper is accepted, and every accepted value's canonical encoding
/// reads back as itself and is what `parseCanonical` accepts. The reader it replaced was run against this one on the
/// same corpus (same decisions, same error codes, same values) before it was removed.
@Suite("CanonicalJSON: the shared tokenizer against Foundation on a hostile corpus")
struct CanonicalJSONOracleTests {
    /// Random canonical values' encodings, and the same values spaced out.
    static func generated(_ generator: inout JSONCorpus.Generator) -> [[UInt8]] {
        func value(_ depth: Int) -> CanonicalJSON {
            let names = ["a", "B", "_", "a b", "é", "e\u{301}", "k\\", "\u{1}", "😀", "\u{2028}", ""]
            switch generator.below(depth > 3 ? 3 : 5) {
            case 0:
                let pieces = [
                    "plain", "\"", "\\", "/", "\n\t\r\u{08}\u{0C}", "\u{01}\u{1F}", "é😀", "e\u{301}",
                    "\u{7F}",
                ]
                return .string((0..<3).map { _ in pieces[generator.below(pieces.count)] }.joined())
            case 1:
                let numbers: [Int64] = [
                    0, 1, -1, 1 << 53, -(1 << 53), (1 << 53) + 1, .max, .min, 1_700_000_000,
                ]
                return .integer(numbers[generator.below(numbers.count)])
            case 2: return .bool(generator.below(2) == 0)
            case 3: return .array((0..<generator.below(4)).map { _ in value(depth + 1) })
            default:
                var members: [String: CanonicalJSON] = [:]
                for _ in 0..<generator.below(6) {
                    members[names[generator.below(names.count)]] = value(depth + 1)
                }
                return .object(members)
            }
        }
        var result: [[UInt8]] = []
        for _ in 0..<60 {
            let bytes = value(0).canonicalBytes
            result.append(bytes)
            result.append(
                bytes.flatMap { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: ":") ? [$0, 0x20] : [$0] }
            )
        }
        return result
    }

    /// Whether Foundation's reading of a document is `value` (its integers exact, no `null`, no fractions).
    static func matches(_ value: CanonicalJSON, _ object: Any) -> Bool {
        switch value {
        case .string(let text): return FoundationJSON.isString(object, text)
        case .bool(let flag): return FoundationJSON.isBool(object, flag)
        case .integer(let integer):
            guard let number = FoundationJSON.number(object) else { return false }
            return number.int64Value == integer && number.doubleValue == Double(integer)
        case .array(let items): return FoundationJSON.isArray(object, items, matches)
        case .object(let members): return FoundationJSON.isObject(object, members, matches)
        }
    }

    static func check(_ bytes: [UInt8]) -> Bool {
        let foundation = FoundationJSON.read(bytes)
        let read = Result { () throws(CleanRoomError) in try CanonicalJSON.parse(bytes) }
        func fail(_ what: String) -> Bool {
            Issue.record("\(what): \(JSONCorpus.excerpt(bytes))")
            return false
        }
        switch read {
        case .success(let value):
            guard let foundation, matches(value, foundation) else {
                return fail("Foundation reads otherwise")
            }
            guard FoundationJSON.depth(foundation) <= CanonicalJSON.maxDepth else {
                return fail("accepted too deep")
            }
            let encoded = value.canonicalBytes
            guard (try? CanonicalJSON.parse(encoded)) == value else {
                return fail("the encoding reads otherwise")
            }
            let canonical = (try? CanonicalJSON.parseCanonical(bytes)) != nil
            guard canonical == (value.isNFC && encoded == bytes) else {
                return fail("parseCanonical disagrees")
            }
        case .failure(let error) where error.code == .limitExceeded:
            guard let foundation else { break }  // too deep before it was malformed
            guard FoundationJSON.depth(foundation) > CanonicalJSON.maxDepth || bytes.count > CanonicalJSON.maxBytes
            else {
                return fail("limitExceeded, yet Foundation reads it within the limits")
            }
        case .failure(let error):
            guard error.code == .malformed else { return fail("refused with \(error)") }
        }
        return true
    }

    @Test func theReaderAgreesWithFoundationOnAHostileCorpus() {
        var generator = JSONCorpus.Generator(state: 0xCA70_0001)
        let documents = JSONCorpus.documents(
            extra: Self.generated(&generator),
            depths: 28...36,
            rounds: 60,
            seed: 0xCA70_0002
        )
        var failures = 0
        var accepted = 0
        for document in documents {
            if !Self.check(document) { failures += 1 }
            if (try? CanonicalJSON.parse(document)) != nil { accepted += 1 }
            if failures > 20 { break }
        }
        // Over the size limit: refused with limitExceeded before any parsing.
        let big =
            [UInt8(ascii: "[")] + Array(repeating: UInt8(ascii: " "), count: CanonicalJSON.maxBytes) + [
                93
            ]
        #expect(throws: CleanRoomError(.limitExceeded, "")) { try CanonicalJSON.parse(big) }
        #expect(failures == 0)
        #expect(documents.count > 5000)
        #expect(
            accepted > 300 && accepted < documents.count - 1000,
            "\(accepted) of \(documents.count) accepted"
        )
    }

    /// The clean room's own rules, one fault each, with the code each gets (a limit, or malformed JSON).
    static let ownRules: [(text: String, code: CleanRoomError.Code)] = {
        let deep: String = String(repeating: "[", count: 40)
        let tooDeep: String = String(repeating: "[", count: 34) + String(repeating: "]", count: 34)
        var cases: [(text: String, code: CleanRoomError.Code)] = []
        for text in ["null", "[1.0]", "[1e0]", "[1E0]", "9223372036854775808", "-9223372036854775809"] {
            cases.append((text, .malformed))
        }
        for text in ["{\"a\":1,\"a\":2}", "{\"é\":1,\"e\u{301}\":2}", "\"\\ud800\"", "[1,]", "[null," + deep + "]"] {
            cases.append((text, .malformed))
        }
        cases.append((tooDeep, .limitExceeded))
        cases.append(("[1," + deep, .limitExceeded))
        return cases
    }()

    @Test(arguments: ownRules)
    func ownRulesRefuseWithTheirCode(_ text: String, _ code: CleanRoomError.Code) throws {
        let error = try #require(throws: CleanRoomError.self) {
            try CanonicalJSON.parse(Array(text.utf8))
        }
        #expect(error.code == code, "\(text): \(error)")
    }

    @Test func theLimitsAreExact() throws {
        // Values 32 levels below the document are read; an empty container there is too; nothing deeper.
        let deepest = String(repeating: "[", count: 32) + "1" + String(repeating: "]", count: 32)
        #expect(throws: Never.self) { try CanonicalJSON.parse(Array(deepest.utf8)) }
        let empty = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(throws: Never.self) { try CanonicalJSON.parse(Array(empty.utf8)) }
        let deeper = String(repeating: "[", count: 33) + "1" + String(repeating: "]", count: 33)
        #expect(throws: CleanRoomError(.limitExceeded, "")) {
            try CanonicalJSON.parse(Array(deeper.utf8))
        }
        let extremes: CanonicalJSON = .array([.integer(.max), .integer(.min)])
        let read = try CanonicalJSON.parse(Array("[9223372036854775807,-9223372036854775808]".utf8))
        #expect(read == extremes)
    }
}
