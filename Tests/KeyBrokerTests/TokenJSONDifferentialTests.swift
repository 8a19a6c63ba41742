import AttestationAPI
import Testing

@testable import KeyBroker

/// `TokenJSON`'s reader, now built on the shared tokenizer (EnclaveCore's `JSONTape`), against the reader it
/// replaced (`TokenJSON.legacyParse`) on `JSONCorpus`: the same accept/refuse decision on every document and, where
/// both accept, the same value (doubles bit for bit).
@Suite("TokenJSON: shared tokenizer against the old reader")
struct TokenJSONDifferentialTests {
    /// Whether `a` and `b` are the same value, doubles compared by their bits (`-0.0` is not `0.0`).
    static func identical(_ a: TokenValue, _ b: TokenValue) -> Bool {
        switch (a, b) {
        case (.double(let x), .double(let y)): return x.bitPattern == y.bitPattern
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { identical(value, $0) } ?? false }
        default: return a == b
        }
    }

    /// Random valid documents (`TokenValue/jsonText` of random values).
    static func generated(_ generator: inout JSONCorpus.Generator) -> [[UInt8]] {
        func value(_ depth: Int) -> TokenValue {
            let names = ["a", "B", "_", "a b", "é", "e\u{301}", "k\\", "x5c", "\u{1}", "😀", "\u{2028}"]
            switch generator.below(depth > 3 ? 5 : 7) {
            case 0:
                let pieces = [
                    "plain", "\"", "\\", "/", "\n\t\r\u{08}\u{0C}", "\u{01}\u{1F}", "é😀", "\u{2028}", "\u{7F}",
                ]
                return .string((0..<3).map { _ in pieces[generator.below(pieces.count)] }.joined())
            case 1:
                let numbers = [0, 1, -1, 1 << 53, -(1 << 53), (1 << 53) + 1, Int.max, Int.min, 1_700_000_000]
                return .integer(numbers[generator.below(numbers.count)])
            case 2: return .double([0.5, -1.25e-7, 1e300, 123.456, 1e19, -0.0][generator.below(6)])
            case 3: return .bool(generator.below(2) == 0)
            case 4: return .null
            case 5: return .array((0..<generator.below(4)).map { _ in value(depth + 1) })
            default:
                var members: [String: TokenValue] = [:]
                for _ in 0..<generator.below(6) { members[names[generator.below(names.count)]] = value(depth + 1) }
                return .object(members)
            }
        }
        return (0..<60).map { _ in Array(value(0).jsonText.utf8) }
    }

    static func check(_ bytes: [UInt8], maximumDepth: Int) -> Bool {
        let old = Result { () throws(TokenJSON.Failure) in try TokenJSON.legacyParse(bytes, maximumDepth: maximumDepth)
        }
        let new = Result { () throws(TokenJSON.Failure) in try TokenJSON.parse(bytes, maximumDepth: maximumDepth) }
        switch (old, new) {
        case (.success(let expected), .success(let value)):
            guard identical(expected, value) else {
                Issue.record("values differ: \(String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription)")
                return false
            }
        case (.failure, .failure): break
        case (.success, .failure(let failure)):
            Issue.record("only the old reader accepts \(bytes.prefix(300)): \(failure)")
            return false
        case (.failure(let failure), .success):
            Issue.record("only the new reader accepts \(bytes.prefix(300)) (old: \(failure))")
            return false
        }
        return true
    }

    @Test func theSharedTokenizerReadsAsTheOldReaderRead() {
        var generator = JSONCorpus.Generator(state: 0x70CE_0001)
        let documents = JSONCorpus.documents(
            extra: Self.generated(&generator),
            depths: 0...40,
            rounds: 60,
            seed: 0x70CE_0002
        )
        var failures = 0
        var accepted = 0
        for document in documents {
            // The release path's limits: a token (35), the server's request bodies (2), and a few more.
            for depth in [35, 2, 0, 1] {
                if !Self.check(document, maximumDepth: depth) { failures += 1 }
            }
            if (try? TokenJSON.parse(document, maximumDepth: 35)) != nil { accepted += 1 }
            if failures > 20 { break }
        }
        #expect(failures == 0)
        // The corpus exercises both sides: many documents are read, many refused.
        #expect(documents.count > 5000)
        #expect(accepted > 500 && accepted < documents.count - 1000, "\(accepted) of \(documents.count) accepted")
    }
}
