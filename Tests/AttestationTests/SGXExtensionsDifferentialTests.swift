import EnclaveCore
import TestSupport
import Testing
import X509

@testable import Attestation

/// The direct reader of the PCK certificate's SGX extension (`SGXExtensions.fastFields`) against swift-asn1's parse
/// (`SGXExtensions.asn1Fields`): on the real extensions and on byte mutations of them, whatever the direct reader
/// reads, swift-asn1 reads too, with the same values; what it does not read goes to swift-asn1, which gives every
/// refusal. So both accept and refuse alike and agree on every value.
@Suite("PCK certificate SGX extension: direct reader against swift-asn1")
struct SGXExtensionsDifferentialTests {
    /// The SGX extension of every real quote's PCK certificate, and one our encoder writes with two-octet SVNs.
    static func extensions() throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        for path in Vectors.quotes + Vectors.tdxQuotes {
            let quote = try DCAPQuote(bytes: Vectors.bytes(path))
            let leaf = try #require(try quote.pckChain().first)
            let value = try #require(leaf.extensions.first { $0.oid == SGXExtensions.oid }?.value)
            result.append(Array(value))
        }
        let synthetic = SGXExtensions(
            ppid: [UInt8](repeating: 0xA5, count: 16),
            tcbComponents: [0, 1, 127, 128, 255, 256, 300, 1000, 32767, 2, 3, 4, 5, 6, 7, 8],
            pceSVN: 200,
            cpuSVN: [UInt8](repeating: 0x80, count: 16),
            pceID: [0, 0],
            fmspc: [0x00, 0x90, 0x6E, 0xA1, 0x00, 0x00],
            sgxType: 1
        )
        result.append(try synthetic.derEncoded())
        return result
    }

    /// A small deterministic generator (SplitMix64): the same mutations on every run.
    typealias Generator = SplitMix64

    /// Values that matter to a DER reader: tags, length forms, sign bits.
    static let interesting: [UInt8] = [
        0x00, 0x01, 0x02, 0x04, 0x06, 0x0A, 0x1F, 0x20, 0x24, 0x26, 0x30, 0x7F, 0x80, 0x81, 0x82, 0x83, 0xA0, 0xFF,
    ]

    /// `der` (well-formed DER) written again with the length of its `target`-th node (in document order) in a
    /// longer form than DER allows (`0x81 L` for a short length, one leading zero octet more for a long one), the
    /// lengths of its ancestors grown to match: a mutation random byte changes rarely make consistent.
    static func nonMinimalLength(_ der: [UInt8], target: Int) -> [UInt8] {
        var counter = 0
        func length(_ count: Int, stretched: Bool) -> [UInt8] {
            var octets: [UInt8] = []
            var rest = count
            while rest > 0 {
                octets.insert(UInt8(rest & 0xFF), at: 0)
                rest >>= 8
            }
            if !stretched { return count < 0x80 ? [UInt8(count)] : [0x80 | UInt8(octets.count)] + octets }
            return count < 0x80 ? [0x81, UInt8(count)] : [0x80 | UInt8(octets.count + 1), 0] + octets
        }
        func write(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var output: [UInt8] = []
            var index = bytes.startIndex
            while index < bytes.endIndex {
                let tag = bytes[index]
                var count = Int(bytes[index + 1])
                var start = index + 2
                if count & 0x80 != 0 {
                    let octets = count & 0x7F
                    count = 0
                    for offset in 0..<octets { count = count << 8 | Int(bytes[start + offset]) }
                    start += octets
                }
                let stretched = counter == target
                counter += 1
                let contents =
                    tag & 0x20 != 0 ? write(bytes[start..<start + count]) : Array(bytes[start..<start + count])
                output += [tag] + length(contents.count, stretched: stretched) + contents
                index = start + count
            }
            return output
        }
        return write(der[...])
    }

    static func mutate(_ bytes: [UInt8], _ generator: inout Generator) -> [UInt8] {
        var result = bytes
        for _ in 0...generator.below(2) {
            guard !result.isEmpty else { break }
            let index = generator.below(result.count)
            switch generator.below(8) {
            case 0: result[index] = UInt8(truncatingIfNeeded: generator.next())
            case 1: result[index] ^= 1 << UInt8(generator.below(8))
            case 2: result[index] = interesting[generator.below(interesting.count)]
            case 3: result[index] &+= generator.below(2) == 0 ? 1 : 0xFF
            case 4: result.remove(at: index)
            case 5: result.insert(interesting[generator.below(interesting.count)], at: index)
            case 6: result.removeSubrange(index...)
            default:
                let end = min(result.count, index + 1 + generator.below(24))
                result.insert(contentsOf: result[index..<end], at: end)
            }
        }
        return result
    }

    /// One input: if the direct reader reads it, swift-asn1 must read the same; the public parser must give what
    /// swift-asn1's reading gives. Returns whether the direct reader read it.
    @discardableResult
    static func check(_ input: [UInt8]) -> Bool {
        let fast = SGXExtensions.fastFields(input[...])
        let slow = Result { () throws(EnclaveError) in try SGXExtensions.asn1Fields(input[...]) }
        if let fast {
            guard case .success(let fields) = slow else {
                Issue.record("the direct reader read bytes swift-asn1 refuses: \(Hex.encode(input))")
                return true
            }
            #expect(fields == fast, "values differ for \(Hex.encode(input))")
        }
        // The whole parser: accepted and refused alike, same values, same message.
        let whole = Result { () throws(EnclaveError) in try SGXExtensions(derEncoded: input[...]) }
        switch (slow, whole) {
        case (.failure(let expected), .failure(let actual)):
            #expect("\(expected)" == "\(actual)", "error differs for \(Hex.encode(input))")
        case (.success(let fields), .success(let parsed)):
            #expect(fields.ppid == parsed.ppid && fields.fmspc == parsed.fmspc && fields.pceID == parsed.pceID)
            #expect(fields.cpuSVN == parsed.cpuSVN && fields.pceSVN == parsed.pceSVN)
            #expect(fields.sgxType == parsed.sgxType && fields.components.map { $0 ?? -1 } == parsed.tcbComponents)
        case (.success, .failure):
            break  // swift-asn1 read it but a required field is missing or mis-sized: refused by the shared check
        case (.failure, .success):
            Issue.record("accepted bytes swift-asn1 refuses: \(Hex.encode(input))")
        }
        return fast != nil
    }

    @Test func theDirectReaderReadsEveryRealExtension() throws {
        for value in try Self.extensions() {
            let fast = try #require(SGXExtensions.fastFields(value[...]), "\(Hex.encode(value))")
            #expect(fast == (try SGXExtensions.asn1Fields(value[...])))
            Self.check(value)
        }
    }

    @Test func mutatedExtensionsAreReadAlikeOrRefusedAlike() throws {
        var generator = Generator(state: 0x5EED_0001)
        var readDirectly = 0
        var total = 0
        for value in try Self.extensions() {
            for _ in 0..<3_000 {
                if Self.check(Self.mutate(value, &generator)) { readDirectly += 1 }
                total += 1
            }
        }
        // The mutations reach the direct reader's accepting paths, not only its hand-offs.
        #expect(readDirectly > total / 20, "\(readDirectly) of \(total) read directly")
    }

    @Test func everyLengthInALongerFormIsRefusedAlike() throws {
        for value in try Self.extensions() {
            #expect(Self.nonMinimalLength(value, target: -1) == value)  // the rewriter itself changes nothing
            for target in 0..<200 {
                let stretched = Self.nonMinimalLength(value, target: target)
                guard stretched != value else { break }
                Self.check(stretched)
                expectEnclaveError(.malformedInput) { try SGXExtensions(derEncoded: stretched[...]) }
            }
        }
    }
}
