import AttestationAPI
import EnclaveCore
import Foundation
import TestSupport
import Testing

@testable import KeyBroker

/// `TokenJSON`'s reader (the shared tokenizer, EnclaveCore's `JSONTape`, under the key broker's rules) on
/// `JSONCorpus`, against independent references: Foundation's `JSONSerialization` accepts everything it accepts
/// and reads the same values (and refuses nothing it accepts), and the collateral rules nest with its own (what
/// `TokenJSON` reads 63 deep the collateral tape reads; what that reads `TokenJSON` reads 64 deep). The reader it
/// replaced was run against this one on the same corpus (same decisions, same values) before it was removed.
@Suite("TokenJSON: the shared tokenizer against Foundation on a hostile corpus")
struct TokenJSONOracleTests {
    /// Random valid documents (`TokenValue/jsonText` of random values).
    static func generated(_ generator: inout JSONCorpus.Generator) -> [[UInt8]] {
        func value(_ depth: Int) -> TokenValue {
            let names = ["a", "B", "_", "a b", "é", "e\u{301}", "k\\", "x5c", "\u{1}", "😀", "\u{2028}"]
            switch generator.below(depth > 3 ? 5 : 7) {
            case 0:
                let pieces = [
                    "plain", "\"", "\\", "/", "\n\t\r\u{08}\u{0C}", "\u{01}\u{1F}", "é😀", "\u{2028}",
                    "\u{7F}",
                ]
                return .string((0..<3).map { _ in pieces[generator.below(pieces.count)] }.joined())
            case 1:
                let numbers = [
                    0, 1, -1, 1 << 53, -(1 << 53), (1 << 53) + 1, Int.max, Int.min, 1_700_000_000,
                ]
                return .integer(numbers[generator.below(numbers.count)])
            case 2: return .double([0.5, -1.25e-7, 1e300, 123.456, 1e19, -0.0][generator.below(6)])
            case 3: return .bool(generator.below(2) == 0)
            case 4: return .null
            case 5: return .array((0..<generator.below(4)).map { _ in value(depth + 1) })
            default:
                var members: [String: TokenValue] = [:]
                for _ in 0..<generator.below(6) {
                    members[names[generator.below(names.count)]] = value(depth + 1)
                }
                return .object(members)
            }
        }
        return (0..<60).map { _ in Array(value(0).jsonText.utf8) }
    }

    /// Whether Foundation's reading of a document is `value`: the same strings (bytes), booleans, nulls, arrays,
    /// members, and numbers of the same value.
    static func matches(_ value: TokenValue, _ object: Any) -> Bool {
        switch value {
        case .null: return object is NSNull
        case .string(let text): return FoundationJSON.isString(object, text)
        case .bool(let flag): return FoundationJSON.isBool(object, flag)
        case .integer(let integer): return sameNumber(Double(integer), object)
        case .double(let double): return sameNumber(double, object)
        case .array(let elements): return FoundationJSON.isArray(object, elements, matches)
        case .object(let members): return FoundationJSON.isObject(object, members, matches)
        }
    }

    /// Whether Foundation read a number of `expected`'s value (to the last bit or two of a double).
    static func sameNumber(_ expected: Double, _ object: Any) -> Bool {
        guard let actual = FoundationJSON.number(object)?.doubleValue else { return false }
        return actual == expected || abs(actual - expected) <= abs(expected) * 1e-15
    }

    static func check(_ bytes: [UInt8]) -> Bool {
        let foundation = FoundationJSON.read(bytes)
        let read = try? TokenJSON.parse(bytes, maximumDepth: 64)
        if let read {
            guard let foundation, matches(read, foundation) else {
                Issue.record("Foundation reads otherwise: \(JSONCorpus.excerpt(bytes))")
                return false
            }
        }
        let tape = try? JSONTape(parsing: bytes, rules: .collateral)
        if tape != nil, read == nil {
            Issue.record("TokenJSON refuses what the collateral tape reads: \(JSONCorpus.excerpt(bytes))")
            return false
        }
        if (try? TokenJSON.parse(bytes, maximumDepth: 63)) != nil, tape == nil {
            Issue.record("the collateral tape refuses what TokenJSON reads 63 deep: \(JSONCorpus.excerpt(bytes))")
            return false
        }
        return true
    }

    @Test func theReaderAgreesWithFoundationOnAHostileCorpus() {
        var generator = JSONCorpus.Generator(state: 0x70CE_0001)
        let documents = JSONCorpus.documents(
            extra: Self.generated(&generator),
            depths: 60...66,
            rounds: 60,
            seed: 0x70CE_0002
        )
        var failures = 0
        var accepted = 0
        var foundationOnly = 0
        for document in documents {
            if !Self.check(document) { failures += 1 }
            let read = (try? TokenJSON.parse(document, maximumDepth: 64)) != nil
            if read { accepted += 1 }
            if !read, FoundationJSON.read(document) != nil { foundationOnly += 1 }
            if failures > 20 { break }
        }
        #expect(failures == 0)
        // The corpus exercises both sides, and the ways the reader is stricter than Foundation (duplicate keys,
        // lone surrogates in some spellings, nesting) occur in it.
        #expect(documents.count > 5000)
        #expect(
            accepted > 500 && accepted < documents.count - 1000,
            "\(accepted) of \(documents.count) accepted"
        )
        #expect(foundationOnly > 0)
    }
}
