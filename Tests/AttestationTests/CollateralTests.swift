import Attestation
import EnclaveCore
import Foundation
import TestSupport
import Testing

@Suite("SGX collateral: TCB info, QE identity, TCB status")
struct CollateralTests {
    static let quotePath = "sgx/phala-dcap-qvl/sgx_quote"
    static let collateralPath = "sgx/phala-dcap-qvl/sgx_quote_collateral.json"
    /// MANIFEST: dcap-qvl verifies this pair at 1752919277 to ConfigurationAndSWHardeningNeeded.
    static let time = Date(timeIntervalSince1970: 1_752_919_277)

    func verify(at time: Date = Self.time, mutate: (inout Collateral) -> Void = { _ in }) async throws -> Claims {
        var collateral = try Collateral(dcapQVLJSON: Vectors.bytes(Self.collateralPath))
        mutate(&collateral)
        let quote = try DCAPQuote(bytes: Vectors.bytes(Self.quotePath))
        return try await quote.verify(
            anchors: [.init(certificate: IntelRoots.sgxRootCA, simulated: false)],
            collateral: collateral,
            at: time
        )
    }

    @Test func realQuoteHasTheStatusAndAdvisoriesTheReferenceVerifierReports() async throws {
        let claims = try await verify()
        #expect(claims.tcbStatus == .configurationAndSWHardeningNeeded)
        #expect(claims.advisoryIDs == ["INTEL-SA-00289", "INTEL-SA-00615"])
        #expect(!claims.simulated)
    }

    @Test func collateralWindowEdges() async throws {
        // Latest issue date (TCB info 2025-06-19T10:56:11Z) is accepted; one second before it is not.
        let issued = Date(timeIntervalSince1970: 1_750_330_571)
        _ = try await verify(at: issued)
        let early = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify(at: issued.addingTimeInterval(-1))
        }
        #expect(early?.check == .collateralValidity)
        // QE identity's nextUpdate (2025-07-19T10:01:18Z) is the first expired second.
        let expired = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify(at: Date(timeIntervalSince1970: 1_752_919_278))
        }
        #expect(expired?.check == .collateralValidity)
    }

    @Test func tamperedCollateralFailsItsSignature() async throws {
        let tcb = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify { collateral in
                let text = String(decoding: collateral.tcbInfoBytes, as: UTF8.self)
                collateral.tcbInfoBytes = Array(
                    text.replacingOccurrences(of: "\"tcbStatus\":\"OutOfDate\"", with: "\"tcbStatus\":\"UpToDate\"")
                        .utf8
                )
            }
        }
        #expect(tcb?.check == .tcbInfoSignature)
        let qe = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify { $0.qeIdentitySignature[3] ^= 1 }
        }
        #expect(qe?.check == .qeIdentitySignature)
        let chain = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify { $0.tcbInfoIssuerChain = $0.tcbInfoIssuerChain.suffix(1) }
        }
        #expect(chain?.check == .tcbInfoSignature)
    }

    @Test func crlsAreCheckedBeforeAnythingElse() async throws {
        let collateral = try Collateral(dcapQVLJSON: Vectors.bytes(Self.collateralPath))
        let pckCRL = try CertificateRevocationList(bytes: collateral.pckCRL)
        #expect(pckCRL.isCurrent(at: Self.time))
        let chain = try DCAPQuote(bytes: Vectors.bytes(Self.quotePath)).pckChain()
        #expect(pckCRL.isSigned(by: chain[1]))
        #expect(!pckCRL.isSigned(by: chain[0]))
        #expect(!pckCRL.revokes(chain[0]))
        // Hexadecimal and DER inputs parse alike.
        let hex = Array(Hex.encode(collateral.pckCRL).utf8)
        #expect(try CertificateRevocationList(bytes: hex).revokedSerials == pckCRL.revokedSerials)

        let tampered = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify { $0.pckCRL[$0.pckCRL.count - 5] ^= 1 }
        }
        #expect(tampered?.check == .crl)
        let swapped = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await verify { $0.pckCRL = $0.rootCACRL }
        }
        #expect(swapped?.check == .crl)
        for length in stride(from: 0, to: collateral.pckCRL.count, by: 9) {
            expectEnclaveError(.malformedInput) {
                try CertificateRevocationList(bytes: Array(collateral.pckCRL.prefix(length)))
            }
        }
    }

    @Test func parsesBothTCBInfoVersions() throws {
        let v2 = """
            {"id":"SGX","version":2,"issueDate":"2023-01-01T00:00:00Z","nextUpdate":"2023-02-01T00:00:00Z",\
            "fmspc":"00906ED50000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,"tcbLevels":[{"tcb":\
            {"sgxtcbcomp01svn":2,"sgxtcbcomp02svn":2,"sgxtcbcomp03svn":2,"sgxtcbcomp04svn":4,"sgxtcbcomp05svn":1,\
            "sgxtcbcomp06svn":128,"sgxtcbcomp07svn":0,"sgxtcbcomp08svn":0,"sgxtcbcomp09svn":0,"sgxtcbcomp10svn":0,\
            "sgxtcbcomp11svn":0,"sgxtcbcomp12svn":0,"sgxtcbcomp13svn":0,"sgxtcbcomp14svn":0,"sgxtcbcomp15svn":0,\
            "sgxtcbcomp16svn":0,"pcesvn":9},"tcbDate":"2022-01-01T00:00:00Z","tcbStatus":"UpToDate"}]}
            """
        let info = try TCBInfo(jsonBytes: Array(v2.utf8))
        #expect(info.version == 2)
        #expect(info.levels.first?.sgxComponents[5] == 128)
        #expect(
            info.matchingLevel(components: [2, 2, 2, 4, 1, 128] + Array(repeating: 0, count: 10), pceSVN: 9) != nil
        )
        #expect(
            info.matchingLevel(components: [2, 2, 2, 3, 1, 128] + Array(repeating: 0, count: 10), pceSVN: 9) == nil
        )
        #expect(
            info.matchingLevel(components: [2, 2, 2, 4, 1, 128] + Array(repeating: 0, count: 10), pceSVN: 8) == nil
        )
        expectEnclaveError(.malformedInput) { try TCBInfo(jsonBytes: Array(v2.utf8.dropLast())) }
    }

    @Test func qeOutOfDateFoldsIntoThePlatformStatus() {
        #expect(TCBStatus.upToDate.combined(withQE: .outOfDate) == .outOfDate)
        #expect(TCBStatus.configurationNeeded.combined(withQE: .outOfDate) == .outOfDateConfigurationNeeded)
        #expect(TCBStatus.swHardeningNeeded.combined(withQE: .upToDate) == .swHardeningNeeded)
        #expect(TCBStatus.upToDate.combined(withQE: .revoked) == .revoked)
    }
}

@Suite("Verification cache")
struct VerificationCacheTests {
    let anchors = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]

    func run(
        _ quote: DCAPQuote,
        _ collateral: Collateral,
        at time: Date,
        cache: VerificationCache?
    ) async throws
        -> (Claims, Int)
    {
        let counter = SignatureCounter()
        let claims = try await SignatureCounter.$current.withValue(counter) {
            try await quote.verify(anchors: anchors, collateral: collateral, at: time, cache: cache)
        }
        return (claims, counter.value)
    }

    @Test func cachedPathDoesOnlyThePerQuoteSignatures() async throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes(CollateralTests.quotePath))
        let collateral = try Collateral(dcapQVLJSON: Vectors.bytes(CollateralTests.collateralPath))
        let cache = VerificationCache()
        let (uncached, full) = try await run(quote, collateral, at: CollateralTests.time, cache: nil)
        let (first, firstCount) = try await run(quote, collateral, at: CollateralTests.time, cache: cache)
        let (second, secondCount) = try await run(quote, collateral, at: CollateralTests.time, cache: cache)
        #expect(uncached == first && first == second)
        #expect(firstCount == full)
        #expect(secondCount == 1)  // the quote's own signature; the platform's QE report was checked with it
        #expect(full == 9)

        // A cached platform does not excuse a tampered quote.
        var bytes = quote.bytes
        bytes[48 + 100] ^= 1
        let tampered = try DCAPQuote(bytes: bytes)
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await run(tampered, collateral, at: CollateralTests.time, cache: cache)
        }
        #expect(failure?.check == .quoteSignature)

        // A different QE report (here: its signature altered) is not the cached platform's: checked in full.
        var qe = quote.bytes
        qe[436 + 128 + 384 + 5] ^= 1
        let otherQE = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await run(try DCAPQuote(bytes: qe), collateral, at: CollateralTests.time, cache: cache)
        }
        #expect(otherQE?.check == .qeReportSignature)

        // Outside the cached window the full checks run again, and fail on the expired collateral.
        let late = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await run(quote, collateral, at: CollateralTests.time.addingTimeInterval(3600), cache: cache)
        }
        #expect(late?.check == .crl || late?.check == .collateralValidity)
    }
}
