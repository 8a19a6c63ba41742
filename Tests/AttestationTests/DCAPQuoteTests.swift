import Crypto
import EnclaveCore
import Foundation
import TestSupport
import Testing
import X509

@testable import Attestation

@Suite("SGX quote v3: parsing and signature chain")
struct DCAPQuoteTests {
    @Test(arguments: Vectors.quotes)
    func parsesRealQuotes(_ path: String) throws {
        let bytes = try Vectors.bytes(path)
        let quote = try DCAPQuote(bytes: bytes)
        #expect(quote.header.version == 3)
        #expect(quote.header.qeVendorID == DCAPQuote.intelQEVendorID)
        #expect(quote.certification.type == 5)
        #expect(quote.bytes == bytes)
        #expect(try quote.pckChain().count == 3)
    }

    @Test(arguments: Vectors.quotes)
    func realQuotesVerifyToTheIntelRoot(_ path: String) async throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(path))
        let chain = try await quote.verifySignatures(trustAnchors: [Vectors.intelRoot()], at: Vectors.time)
        #expect(chain.first?.subject.description.contains("Intel SGX PCK Certificate") == true)
        #expect(chain.last == (try Vectors.intelRoot()))
    }

    @Test(arguments: Vectors.quotes + Vectors.tdxQuotes)
    func everyTruncatedPrefixAndTrailingDataIsRejected(_ path: String) throws {
        let bytes = try DCAPQuote(bytes: Vectors.bytes(path)).bytes
        for length in stride(from: 0, to: bytes.count, by: 7) {
            expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: Array(bytes.prefix(length))) }
        }
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: bytes + [1]) }
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: bytes + [0, 0, 0, 0x20]) }
        // Zero padding (fixed-size buffers of quote generators) is accepted and not part of the quote.
        #expect(try DCAPQuote(bytes: bytes + [UInt8](repeating: 0, count: 3000)).bytes == bytes)
    }

    /// Flip one byte in each signed or bound region; the failure names that region's check.
    @Test(arguments: [
        ("header", 10, DCAPQuote.Check.quoteSignature),
        ("report body: CPUSVN", 48 + 0, .quoteSignature),
        ("report body: attributes", 48 + 48, .quoteSignature),
        ("report body: MRENCLAVE", 48 + 64, .quoteSignature),
        ("report body: MRSIGNER", 48 + 128, .quoteSignature),
        ("report body: ISVPRODID", 48 + 256, .quoteSignature),
        ("report body: ISVSVN", 48 + 258, .quoteSignature),
        ("report body: report data", 48 + 320, .quoteSignature),
        ("quote signature", 436 + 5, .quoteSignature),
        ("attestation key", 436 + 64 + 5, .qeReportDataBinding),
        ("QE report", 436 + 128 + 10, .qeReportSignature),
        ("QE report signature", 436 + 128 + 384 + 5, .qeReportSignature),
        ("QE authentication data", 436 + 128 + 384 + 64 + 2 + 3, .qeReportDataBinding),
    ])
    func tamperedRegionFailsItsCheck(region: String, offset: Int, check: DCAPQuote.Check) async throws {
        var bytes = try Vectors.bytes(Vectors.quotes[0])
        bytes[offset] ^= 0x01
        let quote = try DCAPQuote(bytes: bytes)
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self, "\(region)") {
            try await quote.verifySignatures(trustAnchors: [Vectors.intelRoot()], at: Vectors.time)
        }
        #expect(failure?.check == check, "\(region): \(String(describing: failure))")
    }

    /// A byte changed inside each certificate of the embedded PEM chain breaks the chain (or its parsing).
    @Test func tamperedCertificateFailsThePCKChain() async throws {
        let original = try Vectors.bytes(Vectors.quotes[0])
        let quote = try DCAPQuote(bytes: original)
        let pem = quote.certification.data
        let certificationStart = original.count - pem.count
        let text = String(decoding: pem, as: UTF8.self)
        var searchFrom = text.startIndex
        var tampered = 0
        while let begin = text.range(of: "-----BEGIN CERTIFICATE-----\n", range: searchFrom..<text.endIndex) {
            // A base64 character well inside the certificate body.
            let offset = text.utf8.distance(from: text.startIndex, to: begin.upperBound) + 200
            var bytes = original
            bytes[certificationStart + offset] =
                bytes[certificationStart + offset] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let changed = try DCAPQuote(bytes: bytes)
            let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
                try await changed.verifySignatures(trustAnchors: [Vectors.intelRoot()], at: Vectors.time)
            }
            #expect(failure?.check == .pckChain || failure?.check == .qeReportSignature)
            tampered += 1
            searchFrom = begin.upperBound
        }
        #expect(tampered == 3)
    }

    @Test func wrongTrustAnchorOrTimeFailsThePCKChain() async throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(Vectors.quotes[0]))
        let chain = try quote.pckChain()
        #expect(chain.last?.subject == (try Vectors.intelRoot()).subject)  // control: the chain ends at Intel's root
        // A root with Intel's name but another key: the chain must not verify to it.
        let impostorKey = P256.Signing.PrivateKey()
        let intel = try Vectors.intelRoot()
        let impostor = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(impostorKey.publicKey),
            notValidBefore: intel.notValidBefore,
            notValidAfter: intel.notValidAfter,
            issuer: intel.subject,
            subject: intel.subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(keyCertSign: true, cRLSign: true)
            },
            issuerPrivateKey: Certificate.PrivateKey(impostorKey)
        )
        let wrongAnchor = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verifySignatures(trustAnchors: [impostor], at: Vectors.time)
        }
        #expect(wrongAnchor?.check == .pckChain)
        let expired = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verifySignatures(
                trustAnchors: [Vectors.intelRoot()],
                at: Date(timeIntervalSince1970: 4_102_444_800)
            )
        }
        #expect(expired?.check == .pckChain)
    }
}

@Suite("Shipped trust anchors")
struct RootsTests {
    @Test func intelRootIsTheOneIntelPublishes() throws {
        #expect(IntelRoots.sgxRootCA == (try Vectors.intelRoot()))
    }
}

/// SGX quotes v4 and v5 nest the QE's certification data in type 6 (and v5 adds a body descriptor). Rebuilt here
/// from a real v3 quote: the layout parses, the PCK chain, QE report signature and binding verify (they do not
/// cover the header), and the quote signature — over the changed header — does not.
@Suite("SGX quote v4 and v5 layout")
struct SGXQuoteLayoutTests {
    func rebuilt(version: UInt16) throws -> [UInt8] {
        let v3 = try DCAPQuote(bytes: Vectors.bytes(Vectors.quotes[0]))
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        var header = Array(v3.bytes[0..<48])
        header[0] = UInt8(version)
        let body = Array(v3.bytes[48..<432])
        let inner = le(UInt16(5)) + le(UInt32(v3.certification.data.count)) + v3.certification.data
        let qe =
            v3.qeReport.bytes + v3.qeReportSignature + le(UInt16(v3.qeAuthenticationData.count))
            + v3.qeAuthenticationData + inner
        let signatureData = v3.signature + v3.attestationKey + le(UInt16(6)) + le(UInt32(qe.count)) + qe
        let descriptor = version == 5 ? le(UInt16(1)) + le(UInt32(384)) : []
        return header + descriptor + body + le(UInt32(signatureData.count)) + signatureData
    }

    @Test(arguments: [UInt16(4), 5])
    func nestedCertificationDataParsesAndVerifiesUpToTheQuoteSignature(_ version: UInt16) async throws {
        let bytes = try rebuilt(version: version)
        let quote = try DCAPQuote(bytes: bytes)
        #expect(quote.header.version == version && !quote.isTDX && quote.sgxReport != nil)
        #expect(quote.certification.type == 5)
        let path = try await quote.validatePCKPath(
            chain: quote.pckChain(),
            trustAnchors: [Vectors.intelRoot()],
            at: Vectors.time
        )
        try quote.checkQEReport(pckLeaf: path[0])
        expectAttestationError(.quoteSignature) { try quote.checkQuoteSignature() }
        // The outer type must be 6, and its length must hold exactly the nested data.
        var wrongType = bytes
        let outer = (version == 5 ? 54 : 48) + 384 + 4 + 128
        wrongType[outer] = 5
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: wrongType) }
        var wrongLength = bytes
        wrongLength[outer + 2] &+= 1
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: wrongLength) }
    }
}
