import EnclaveCore
import TestSupport
import Testing

@testable import Attestation

/// The direct CRL reader (`CertificateRevocationList.fastParts`) against swift-asn1's (`asn1Parts`): on Intel's
/// real CRLs and on byte mutations of them, whatever the direct reader reads, swift-asn1 reads too with the same
/// issuer, times, serials, signed bytes and signature; what it does not read goes to swift-asn1, which gives every
/// refusal. So both accept and refuse alike and agree on every value.
@Suite("CRL: direct reader against swift-asn1")
struct CRLDifferentialTests {
    /// Every real CRL in the vectors (root CA and PCK CRLs, SGX and TDX).
    static func crls() throws -> [[UInt8]] {
        var result: [[UInt8]] = [
            try Vectors.bytes("tdx/google-go-tdx-guest/pckcrl"),
            try Vectors.bytes("tdx/google-go-tdx-guest/rootcrl.der"),
        ]
        for path in [
            "sgx/phala-dcap-qvl/sgx_quote_collateral.json", "tdx/phala-dcap-qvl/tdx_quote_collateral.json",
            "tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json",
        ] {
            let collateral = try Collateral(dcapQVLJSON: Vectors.bytes(path), cache: nil)
            result += [collateral.rootCACRL, collateral.pckCRL]
        }
        return result
    }

    /// One input: returns whether the direct reader read it.
    @discardableResult
    static func check(_ input: [UInt8]) -> Bool {
        let fast = CertificateRevocationList.fastParts(input)
        let slow = Result { () throws(EnclaveError) in try CertificateRevocationList.asn1Parts(input) }
        if let fast {
            guard case .success(let parts) = slow else {
                Issue.record("the direct reader read bytes swift-asn1 refuses: \(Hex.encode(input))")
                return true
            }
            #expect(parts == fast, "values differ for \(Hex.encode(input))")
        }
        let whole = Result { () throws(EnclaveError) in try CertificateRevocationList(bytes: input) }
        switch (slow, whole) {
        case (.failure(let expected), .failure(let actual)):
            // DER input (first byte 0x30) reaches the parsers; other input is read as hexadecimal or PEM first.
            if input.first == 0x30 { #expect("\(expected)" == "\(actual)") }
        case (.success(let parts), .success(let crl)):
            #expect(parts.issuer == crl.issuer && parts.thisUpdate == crl.thisUpdate)
            #expect(parts.nextUpdate == crl.nextUpdate && parts.serials == crl.serials)
            #expect(parts.signedBytes == crl.signedBytes && parts.signature == crl.signature)
        case (.success, .failure):
            #expect(input.first != 0x30, "refused a CRL swift-asn1 reads: \(Hex.encode(input))")
        case (.failure, .success):
            #expect(input.first != 0x30, "accepted a CRL swift-asn1 refuses: \(Hex.encode(input))")
        }
        return fast != nil
    }

    @Test func theDirectReaderReadsEveryRealCRL() throws {
        for crl in try Self.crls() {
            let fast = try #require(CertificateRevocationList.fastParts(crl))
            #expect(fast == (try CertificateRevocationList.asn1Parts(crl)))
            #expect(!fast.serials.isEmpty || crl.count < 600)
            Self.check(crl)
        }
    }

    @Test func everyLengthInALongerFormIsRefusedAlike() throws {
        for crl in try Self.crls() {
            #expect(SGXExtensionsDifferentialTests.nonMinimalLength(crl, target: -1) == crl)
            for target in 0..<2_000 {
                let stretched = SGXExtensionsDifferentialTests.nonMinimalLength(crl, target: target)
                guard stretched != crl else { break }
                Self.check(stretched)
                expectEnclaveError(.malformedInput) { try CertificateRevocationList(bytes: stretched) }
            }
        }
    }

    @Test func mutatedCRLsAreReadAlikeOrRefusedAlike() throws {
        var generator = SGXExtensionsDifferentialTests.Generator(state: 0xC41_0003)
        var readDirectly = 0
        var total = 0
        for crl in try Self.crls() {
            for _ in 0..<1_200 {
                if Self.check(SGXExtensionsDifferentialTests.mutate(crl, &generator)) { readDirectly += 1 }
                total += 1
            }
        }
        #expect(readDirectly > total / 20, "\(readDirectly) of \(total) read directly")
    }
}
