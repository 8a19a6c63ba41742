import Foundation

/// Documents for the JSON readers' differential tests (the key broker's `TokenJSON`, the clean room's
/// `CanonicalJSON`, each against ``FoundationJSON``): every input the readers' own tests use, real documents from
/// Tests/Vectors, and hostile mutations of all of them — byte flips, truncations at every length, insertions,
/// deletions, duplicated runs, duplicate keys (escaped, canonically equivalent, past the 16th member), nesting around
/// each limit, big and odd numbers, escapes, surrogates and invalid UTF-8.
public enum JSONCorpus {
    /// The corpus's generator (``SplitMix64``), so that a failure names a reproducible input.
    public typealias Generator = SplitMix64

    /// The inputs of the readers' own tests (ReleaseFastPathTests, ContractTests, JSONTapeTests) and more edge cases.
    public static let seeds: [String] = [
        #"{"a":1,"b":-2,"c":2.5,"d":true,"e":false,"f":null,"g":"x","h":[1,"y",[],{}],"i":{"j":{"k":[null]}}}"#,
        #"{"n":[0,-0,2.0,1e2,1E+2,0.1e1,1.5e1,100e-2,-0.0,9223372036854775807,-9223372036854775808]}"#,
        #"{"n":[9223372036854775808,12345678901234567890,1e19,2.5,1e-300,0.000001,-1.25e-3,123456789.125]}"#,
        #"{"n":[9007199254740993,9007199254740993.0,4611686018427387904e1,0e5,0.0e-5]}"#,
        #"{"s":["\u00e9\ud83d\ude00","\/\\\"\b\f\n\r\t","\u0000\u001f","é😀","a\u2028b",""]}"#,
        " \t\r\n{ \"spaced\" : [ 1 , 2 ] }\n ", "[]", "{}", "\"text\"", "12", "-3.5", "true", "false", "null",
        "", " ", "{", "}", "[1", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{1:2}", "01", "[01]", "[1] x", "[1e]", "[-]",
        "[.5]", "[1.]", "[\"\\x\"]", "[tru]", "[NaN]", "[1e400]", "[-1e400]", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"a\u{01}\"", "\"unterminated", "\"\\u12\"", "'single'", "[+1]", "[Infinity]",
        #"{"a":1,"a":2}"#, #"{"a":1,"\u0061":2}"#, "[1,]", #"{"a":1,}"#, #"{"o":{"k":1,"k":1}}"#,
        #"{"iss":"a","iss":"b"}"#, "1.0000000000000000000000000000000000000000001", "1e-400",
        "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "-0x", "99999999999999999999", "-99999999999999999999",
        #"{"a":[-5,true],"b":"a\"\\\n\u0001é😀"}"#, "{\"a\":[-5,true],\"b\":\"a\\\"\\\\\\n\\u0001é😀\"}",
        "{\"e\\u0301\":1,\"\\u00e9\":2}", "{\"é\":1,\"e\u{301}\":2}", "{\"é\":1,\"é\":2}", "{\"\\u00e9\":1,\"é\":2}",
        "123456789012345678", "-9007199254740993", "9007199254740992", "-9007199254740992", "[[[[]]]]",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
        "0", "-0", "-", "--1", "1-", "1e+", "1e-", "1E5", "1e05", "0.0", "00", "-01", "1.5e308", "1.8e308",
        "4.9e-324", "2.5e-324", "1e-9999999999999999999", "0e99999999999999999999", "1e99999999999999999999",
        "\"\\u0000\"", "\"\\u001F\"", "\"\\u007f\"", "\"\\uD834\\uDD1E\"", "\"\\uDBFF\\uDFFF\"", "\"\\uD800\\uDC00\"",
        "\"\\uDC00\\uD800\"", "\"\\uD800\\uD800\"", "\"\\uD800\\\"\"", "\"\\uD800\\u\"", "\"\\uD800\\uDC0\"",
        "\"\\u00e9\\u0301\"", "\"e\u{301}\"", "\"\\/\"", "\"\\'\"", "\"\\a\"", "\"\\u+123\"", "\"\\u-123\"",
        "\"\\U0041\"", "\"tab\there\"", "\"\\\"", "\"\\", "\"a\\\"", "{\"\":1}", "{\"\":1,\"\":2}", "[\"\",\"\"]",
        "{\"a\":{\"a\":{\"a\":1}}}", "[{\"a\":1},{\"a\":1}]", " [ ] ", "\u{FEFF}[]", "[]\u{0}", "[\u{0}]",
        "[1,2,3,]", "[,1]", "{,}", "{\"a\":1 \"b\":2}", "{\"a\"::1}", "[true false]", "[truex]", "[nullx]",
    ]

    /// Invalid or unusual UTF-8 sequences, inside a string and outside one.
    public static let utf8: [[UInt8]] = [
        [0xC3, 0x28], [0xA0, 0xA1], [0xE2, 0x28, 0xA1], [0xE2, 0x82, 0x28], [0xF0, 0x28, 0x8C, 0xBC],
        [0xF0, 0x90, 0x28, 0xBC], [0xF8, 0xA1, 0xA1, 0xA1, 0xA1], [0xC0, 0x80], [0xED, 0xA0, 0x80],
        [0xED, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xEF, 0xBF, 0xBF], [0xFF], [0xFE], [0xC3], [0xE2, 0x82],
        [0xC3, 0xA9], [0xF0, 0x9F, 0x98, 0x80], [0xE2, 0x80, 0xA8],
    ]

    /// Real JSON documents under Tests/Vectors (up to 64 KiB each, at most `limit` of them).
    public static func vectors(limit: Int = 24) -> [[UInt8]] {
        let root = URL(fileURLWithPath: Vectors.root)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var paths: [String] = []
        for case let url as URL in walker where url.pathExtension == "json" { paths.append(url.path) }
        var result: [[UInt8]] = []
        for path in paths.sorted() {
            guard result.count < limit, let data = FileManager.default.contents(atPath: path), data.count <= 1 << 16
            else { continue }
            result.append(Array(data))
        }
        return result
    }

    /// Nesting of arrays and objects from `low` to `high` levels, empty inside, with a scalar inside, and unclosed.
    public static func nesting(_ low: Int, _ high: Int) -> [[UInt8]] {
        var result: [[UInt8]] = []
        for depth in max(0, low)...high {
            let open = String(repeating: "[", count: depth)
            let close = String(repeating: "]", count: depth)
            result.append(Array((open + close).utf8))
            result.append(Array((open + "1" + close).utf8))
            result.append(Array((open + "\"x\"" + close).utf8))
            result.append(Array(open.utf8))
            let objects = String(repeating: "{\"a\":", count: depth)
            let ends = String(repeating: "}", count: depth)
            result.append(Array((objects + "{}" + ends).utf8))
            result.append(Array((objects + "1" + ends).utf8))
            result.append(
                Array((String(repeating: "[{\"a\":", count: depth) + "[]" + String(repeating: "}]", count: depth)).utf8)
            )
        }
        return result
    }

    /// Objects of `count` members with a duplicate key (plain, escaped, canonically equivalent) at the end.
    public static func duplicates() -> [[UInt8]] {
        var result: [[UInt8]] = []
        for count in [1, 2, 15, 16, 17, 40] {
            let members = (0..<count).map { "\"k\($0)\":\($0)" }
            for last in ["\"k0\":0", "\"k\\u0030\":0", "\"\\u006b0\":0", "\"k\(count - 1)\":1", "\"kk\":1"] {
                result.append(Array(("{" + (members + [last]).joined(separator: ",") + "}").utf8))
            }
            let accented = (0..<count).map { "\"é\($0)\":\($0)" }
            for last in ["\"e\u{301}0\":0", "\"\\u00e90\":0", "\"é0\":0", "\"ê0\":0"] {
                result.append(Array(("{" + (accented + [last]).joined(separator: ",") + "}").utf8))
            }
        }
        return result
    }

    /// Every prefix of `document` (for short documents) or a sample of them.
    public static func truncations(_ document: [UInt8], generator: inout Generator) -> [[UInt8]] {
        if document.count <= 300 { return (0..<document.count).map { Array(document[..<$0]) } }
        return (0..<60).map { _ in Array(document[..<generator.below(document.count)]) }
    }

    /// `rounds` random mutations of `document`: one to three byte edits each.
    public static func mutations(_ document: [UInt8], rounds: Int, generator: inout Generator) -> [[UInt8]] {
        let alphabet = Array(#"{}[]":,\/ bfnrtu0123456789.eE+-aé"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xFF]
        var result: [[UInt8]] = []
        for _ in 0..<rounds {
            var bytes = document
            for _ in 0...generator.below(3) {
                guard !bytes.isEmpty else { break }
                let index = generator.below(bytes.count)
                switch generator.below(7) {
                case 0: bytes[index] = alphabet[generator.below(alphabet.count)]
                case 1: bytes[index] ^= UInt8(1 << generator.below(8))
                case 2: bytes.remove(at: index)
                case 3: bytes.insert(alphabet[generator.below(alphabet.count)], at: index)
                case 4: bytes.insert(contentsOf: utf8[generator.below(utf8.count)], at: index)
                case 5: bytes.removeSubrange(index...)
                default:
                    let end = min(bytes.count, index + 1 + generator.below(40))
                    bytes.insert(contentsOf: bytes[index..<end], at: end)
                }
            }
            result.append(bytes)
        }
        return result
    }

    /// The whole corpus: seeds, vectors, `extra` documents (valid ones the caller generated), each with its
    /// truncations and `rounds` mutations; nesting from `depths`; duplicates; strings with every odd UTF-8 sequence.
    public static func documents(extra: [[UInt8]], depths: ClosedRange<Int>, rounds: Int, seed: UInt64) -> [[UInt8]] {
        var generator = Generator(state: seed)
        let base = seeds.map { Array($0.utf8) } + vectors() + extra + duplicates()
        var result = base
        for document in base {
            result += truncations(document, generator: &generator)
            result += mutations(document, rounds: rounds, generator: &generator)
        }
        result += nesting(depths.lowerBound, depths.upperBound)
        for sequence in utf8 {
            result.append([UInt8(ascii: "\"")] + sequence + [UInt8(ascii: "\"")])
            result.append(Array("{\"".utf8) + sequence + Array("\":1}".utf8))
            result.append(Array("[\"a\\n".utf8) + sequence + Array("\"]".utf8))
            result.append(sequence)
        }
        return result
    }

    /// The start of `document` (300 bytes at most) as quoted text, for a test's failure message.
    public static func excerpt(_ document: [UInt8]) -> String {
        String(decoding: document.prefix(300), as: UTF8.self).debugDescription
    }
}
