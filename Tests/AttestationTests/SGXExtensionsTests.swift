import Attestation
import EnclaveCore
import TestSupport
import Testing
import X509

@Suite("PCK certificate SGX extension")
struct SGXExtensionsTests {
    static func extensionValue(_ certificate: Certificate) -> ArraySlice<UInt8>? {
        certificate.extensions.first { $0.oid == [1, 2, 840, 113_741, 1, 13, 1] }?.value
    }

    @Test(arguments: Vectors.quotes)
    func parsesTheRealPCKExtensionAndRoundTrips(_ path: String) throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(path))
        let leaf = try #require(try quote.pckChain().first)
        let value = try #require(Self.extensionValue(leaf))
        let parsed = try SGXExtensions(derEncoded: value)
        #expect(parsed.fmspc.count == 6)
        #expect(parsed.cpuSVN.count == 16)
        #expect(parsed.tcbComponents.count == 16)
        #expect(parsed.pceSVN == Int(quote.header.pceSVN) || parsed.pceSVN > 0)
        // Our encoder writes what the parser reads.
        #expect(try SGXExtensions(derEncoded: parsed.derEncoded()[...]) == parsed)
    }

    @Test func rejectsMissingFieldsAndGarbage() throws {
        let full = SGXExtensions(
            ppid: [UInt8](repeating: 1, count: 16),
            tcbComponents: Array(0..<16),
            pceSVN: 13,
            cpuSVN: [UInt8](repeating: 2, count: 16),
            pceID: [0, 0],
            fmspc: [0, 0x90, 0x6e, 0xa1, 0, 0],
            sgxType: 0
        )
        let bytes = try full.derEncoded()
        #expect(try SGXExtensions(derEncoded: bytes[...]) == full)
        var short = full
        short.fmspc = [1, 2]
        expectEnclaveError(.malformedInput) { try SGXExtensions(derEncoded: short.derEncoded()[...]) }
        for length in stride(from: 0, to: bytes.count, by: 5) {
            expectEnclaveError(.malformedInput) { try SGXExtensions(derEncoded: bytes.prefix(length)) }
        }
    }
}
