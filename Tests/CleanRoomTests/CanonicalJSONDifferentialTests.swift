import Testing

@testable import CleanRoom

/// `CanonicalJSON`'s reader, now built on the shared tokenizer (EnclaveCore's `JSONTape`), against the reader it
/// replaced (`CanonicalJSON.legacyParse`) on `JSONCorpus`: the same accept/refuse decision with the same error code
/// (`malformed` or `limitExceeded`) on every document, the same value where both accept, and the same
/// `parseCanonical` verdict.
@Suite("CanonicalJSON: shared tokenizer against the old reader")
struct CanonicalJSONDifferentialTests {
    /// Random canonical values' encodings, and the same values spaced out.
    static func generated(_ generator: inout JSONCorpus.Generator) -> [[UInt8]] {
        func value(_ depth: Int) -> CanonicalJSON {
            let names = ["a", "B", "_", "a b", "é", "e\u{301}", "k\\", "\u{1}", "😀", "\u{2028}", ""]
            switch generator.below(depth > 3 ? 3 : 5) {
            case 0:
                let pieces = [
                    "plain", "\"", "\\", "/", "\n\t\r\u{08}\u{0C}", "\u{01}\u{1F}", "é😀", "e\u{301}", "\u{7F}",
                ]
                return .string((0..<3).map { _ in pieces[generator.below(pieces.count)] }.joined())
            case 1:
                let numbers: [Int64] = [0, 1, -1, 1 << 53, -(1 << 53), (1 << 53) + 1, .max, .min, 1_700_000_000]
                return .integer(numbers[generator.below(numbers.count)])
            case 2: return .bool(generator.below(2) == 0)
            case 3: return .array((0..<generator.below(4)).map { _ in value(depth + 1) })
            default:
                var members: [String: CanonicalJSON] = [:]
                for _ in 0..<generator.below(6) { members[names[generator.below(names.count)]] = value(depth + 1) }
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

    static func check(_ bytes: [UInt8]) -> Bool {
        let old = Result { () throws(CleanRoomError) in try CanonicalJSON.legacyParse(bytes) }
        let new = Result { () throws(CleanRoomError) in try CanonicalJSON.parse(bytes) }
        switch (old, new) {
        case (.success(let expected), .success(let value)):
            guard expected == value else {
                Issue.record("values differ: \(String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription)")
                return false
            }
            // parseCanonical is parse and a byte comparison: the same verdict follows.
            let canonical = (try? CanonicalJSON.parseCanonical(bytes)) != nil
            guard canonical == (expected.isNFC && expected.canonicalBytes == bytes) else {
                Issue.record("parseCanonical disagrees on \(bytes.prefix(300))")
                return false
            }
        case (.failure(let expected), .failure(let error)):
            guard expected.code == error.code else {
                Issue.record("codes differ (\(expected) / \(error)) on \(bytes.prefix(300))")
                return false
            }
        case (.success, .failure(let error)):
            Issue.record("only the old reader accepts \(bytes.prefix(300)): \(error)")
            return false
        case (.failure(let error), .success):
            Issue.record("only the new reader accepts \(bytes.prefix(300)) (old: \(error))")
            return false
        }
        return true
    }

    @Test func theSharedTokenizerReadsAsTheOldReaderRead() {
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
        let big = [UInt8(ascii: "[")] + Array(repeating: UInt8(ascii: " "), count: CanonicalJSON.maxBytes) + [93]
        #expect(Self.check(big))
        #expect(failures == 0)
        #expect(documents.count > 5000)
        #expect(accepted > 300 && accepted < documents.count - 1000, "\(accepted) of \(documents.count) accepted")
    }
}
