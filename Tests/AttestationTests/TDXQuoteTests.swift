import EnclaveCore
import Foundation
import TestSupport
import Testing
import X509

@testable import Attestation

/// Real TDX quotes and collateral from Tests/Vectors, with the outcomes its MANIFEST states.
@Suite("TDX quotes v4 and v5: verification, TCB status, policy")
struct TDXQuoteTests {
    static let anchors = [DCAPQuote.TrustAnchor(certificate: IntelRoots.sgxRootCA, simulated: false)]
    static let phalaQuote = "tdx/phala-dcap-qvl/tdx_quote"
    static let phalaCollateral = "tdx/phala-dcap-qvl/tdx_quote_collateral.json"
    static let phalaTime = Date(timeIntervalSince1970: 1_752_919_234)
    static let outdatedQuote = "tdx/phala-dcap-qvl/tdx_quote_outdated"
    static let outdatedCollateral = "tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json"
    static let outdatedTime = Date(timeIntervalSince1970: 1_774_003_274)
    static let v5Sample = "tdx/google-go-tdx-guest/quote_v5_sample.dat"

    func verify(
        _ quotePath: String,
        _ collateralPath: String,
        at time: Date,
        mutate: (inout Collateral) -> Void = { _ in }
    ) async throws -> Claims {
        var collateral = try Collateral(dcapQVLJSON: Vectors.bytes(collateralPath))
        mutate(&collateral)
        return try await DCAPQuote(bytes: Vectors.bytes(quotePath)).verify(
            anchors: Self.anchors,
            collateral: collateral,
            at: time
        )
    }

    func failure(
        _ quotePath: String,
        _ collateralPath: String,
        at time: Date,
        mutate: (inout Collateral) -> Void = { _ in }
    ) async -> DCAPQuote.Check? {
        do {
            _ = try await verify(quotePath, collateralPath, at: time, mutate: mutate)
            return nil
        } catch let failure as DCAPQuote.VerificationFailure {
            return failure.check
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    // MARK: MANIFEST rows

    @Test func phalaV4QuoteIsUpToDate() async throws {
        let claims = try await verify(Self.phalaQuote, Self.phalaCollateral, at: Self.phalaTime)
        #expect(claims.format == "tdx")
        #expect(claims.tcbStatus == .upToDate)
        #expect(claims.advisoryIDs.isEmpty)
        #expect(!claims.simulated)
        let tdx = try #require(claims.tdx)
        #expect(Hex.encode(tdx.mrTD).hasPrefix("91eb2b44d141d4ece09f0c75c2c53d24"))
        #expect(tdx.rtmrs.count == 4)
        #expect(tdx.septVEDisable)
        #expect(tdx.teeTCBSVN2 == nil && tdx.mrServiceTD == nil)  // TD 1.0 body
        try EvidencePolicy().check(claims)
    }

    @Test func goTDXGuestV5SampleWithPhala2026CollateralIsUpToDate() async throws {
        let claims = try await verify(Self.v5Sample, Self.outdatedCollateral, at: Self.outdatedTime)
        #expect(claims.tcbStatus == .upToDate)
        #expect(claims.advisoryIDs.isEmpty)
        let tdx = try #require(claims.tdx)
        #expect(tdx.teeTCBSVN2.map(Hex.encode) == "0d010400000000000000000000000000")
        #expect(tdx.mrServiceTD == [UInt8](repeating: 0, count: 48))
    }

    @Test(arguments: [
        (outdatedQuote, outdatedCollateral, 1_774_003_274),
        ("derived/decoded-hex/phala_tdx-quote.bin", phalaCollateral, 1_752_919_234),
        ("derived/decoded-hex/phala_quote-from-tappd.bin", phalaCollateral, 1_752_919_234),
    ])
    func quotesBelowEveryLevelFailTheTCBLevel(_ quote: String, _ collateral: String, _ time: Int) async {
        #expect(await failure(quote, collateral, at: Date(timeIntervalSince1970: TimeInterval(time))) == .tcbLevel)
    }

    /// go-tdx-guest appends "extra bytes (only for testing purpose)" to this quote: trailing data that is not zero
    /// padding is refused at parsing. Without it the quote verifies up to the TCB level, where dcap-qvl fails it.
    @Test func goTDXGuestSPRQuoteFailsAtParsingAndWithoutItsTrailerAtTheTCBLevel() async throws {
        let bytes = try Vectors.bytes("tdx/google-go-tdx-guest/tdx_prod_quote_SPR_E4.dat")
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: bytes) }
        let trailer = Array(" extra bytes(only for testing purpose)\n".utf8)
        #expect(Array(bytes.suffix(trailer.count - 1)) == Array(trailer.dropFirst()))
        let quote = try DCAPQuote(bytes: Array(bytes.prefix(4935)))
        #expect(quote.header.version == 4 && quote.isTDX)
        let collateral = try Collateral(
            dcapQVLJSON: Vectors.bytes("derived/collateral-dcapqvl-json/gotdxguest_tdx_2023_50806f000000.json")
        )
        let failure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await quote.verify(
                anchors: Self.anchors,
                collateral: collateral,
                at: Date(timeIntervalSince1970: 1_688_173_200)
            )
        }
        #expect(failure?.check == .tcbLevel)
    }

    /// go-tdx-guest's PCS responses, as a directory: the same collateral as the derived JSON bundle. Issuer chains
    /// may be URL-encoded (as in PCS response headers); without its own, the QE identity uses the TCB info's.
    @Test func pccsDirectoryEqualsTheBundle() throws {
        let source = Vectors.root + "/tdx/google-go-tdx-guest"
        let bundle = try Collateral(
            dcapQVLJSON: Vectors.bytes("derived/collateral-dcapqvl-json/gotdxguest_tdx_2023_50806f000000.json")
        )
        let plain = try Collateral(directory: source)
        #expect(plain.tcbInfoBytes == bundle.tcbInfoBytes && plain.qeIdentityBytes == bundle.qeIdentityBytes)
        #expect(plain.tcbInfoSignature == bundle.tcbInfoSignature && plain.pckCRL == bundle.pckCRL)
        #expect(plain.tcbInfoIssuerChain == bundle.tcbInfoIssuerChain)

        let directory = NSTemporaryDirectory() + "pccs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (from, to) in [
            ("sample_tcbInfo_response", "TCBInfo.json"), ("sample_qeIdentity_response", "qe_identity.json"),
            ("pckcrl", "pckcrl"), ("rootcrl.der", "rootcrl.der"), ("pckCrlIssuerChain.pem", "pck_crl_issuer_chain.pem"),
        ] {
            try FileManager.default.copyItem(atPath: source + "/" + from, toPath: directory + "/" + to)
        }
        let chain = String(decoding: try Vectors.bytes("tdx/google-go-tdx-guest/tcbInfoIssuerChain.pem"), as: UTF8.self)
        let encoded = try #require(chain.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        try Data(encoded.utf8).write(to: URL(fileURLWithPath: directory + "/tcb_info_issuer_chain.pem"))
        let renamed = try Collateral(directory: directory)
        #expect(renamed.tcbInfoIssuerChain == bundle.tcbInfoIssuerChain)
        #expect(renamed.qeIdentityIssuerChain == bundle.tcbInfoIssuerChain)
        #expect(renamed.rootCACRL == bundle.rootCACRL)

        try FileManager.default.removeItem(atPath: directory + "/pckcrl")
        expectEnclaveError(.malformedInput) { try Collateral(directory: directory) }
    }

    /// Intel's QVL sample data (a synthetic test PKI): the TDX quote carries DER, not PEM, as "PEM chain" data,
    /// and the SGX quote carries only a PPID (type 1); neither can be verified, and each fails by name.
    @Test func syntheticQVLSamplesFailAtTheCertificationData() async throws {
        let root = try Certificate(
            pemEncoded: String(
                decoding: try Vectors.bytes("synthetic/intel-qvl-sampleData/tdx/trustedRootCaCert.pem"),
                as: UTF8.self
            )
        )
        let anchors = [DCAPQuote.TrustAnchor(certificate: root, simulated: false)]
        let tdx = try DCAPQuote(bytes: Vectors.bytes("synthetic/intel-qvl-sampleData/tdx/quote.dat"))
        let collateral = try Collateral(
            dcapQVLJSON: Vectors.bytes("derived/collateral-dcapqvl-json/SYNTHETIC_intel_qvl_sample_tdx_testpki.json")
        )
        let tdxFailure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await tdx.verify(
                anchors: anchors,
                collateral: collateral,
                at: Date(timeIntervalSince1970: 1_628_261_715)
            )
        }
        #expect(tdxFailure?.check == .pckChain)
        let sgx = try DCAPQuote(bytes: Vectors.bytes("synthetic/intel-qvl-sampleData/quote.dat"))
        let sgxFailure = await #expect(throws: DCAPQuote.VerificationFailure.self) {
            try await sgx.verifyChainOnly(anchors: anchors, at: Date(timeIntervalSince1970: 1_628_261_715))
        }
        #expect(sgxFailure?.check == .certificationDataType)
        // Its TCB info (SVNs beyond a byte) still parses: the numbers are Intel's to choose.
        #expect(try TCBInfo(jsonBytes: collateral.tcbInfoBytes).id == "TDX")
    }

    @Test func timeInconsistentCollateralFailsAtTheCRL() async {
        let check = await failure(
            Self.v5Sample,
            "derived/collateral-dcapqvl-json/gotdxguest_tdx_mixed_90c06f000000_INCONSISTENT.json",
            at: Date(timeIntervalSince1970: 1_770_080_400)
        )
        #expect(check == .crl)
    }

    /// MANIFEST edges for the Phala v4 quote: the latest issue date is accepted, one second earlier is not; the
    /// PCK CRL's nextUpdate is the first expired second; today everything has expired.
    @Test func collateralWindowEdges() async throws {
        _ = try await verify(Self.phalaQuote, Self.phalaCollateral, at: Date(timeIntervalSince1970: 1_750_329_147))
        #expect(
            await failure(Self.phalaQuote, Self.phalaCollateral, at: Date(timeIntervalSince1970: 1_750_329_146))
                == .collateralValidity
        )
        #expect(
            await failure(Self.phalaQuote, Self.phalaCollateral, at: Date(timeIntervalSince1970: 1_752_919_235)) == .crl
        )
        #expect(
            await failure(Self.phalaQuote, Self.phalaCollateral, at: Date(timeIntervalSince1970: 1_795_938_029)) == .crl
        )
    }

    // MARK: Tampering

    /// One byte flipped in each region of a v4 and a v5 quote: the failure names the region's check.
    @Test(arguments: [phalaQuote, v5Sample])
    func tamperedRegionFailsItsCheck(_ path: String) async throws {
        let original = try DCAPQuote(bytes: Vectors.bytes(path)).bytes
        let v5 = original[0] == 5
        let body = 48 + (v5 ? 6 : 0)
        let signatureData = body + (v5 ? TDReport.size15 : TDReport.size10) + 4
        let qe = signatureData + 128 + 6
        var regions: [(String, Int, DCAPQuote.Check)] = [
            ("header user data", 30, .quoteSignature),
            ("TEE_TCB_SVN", body + 2, .quoteSignature),
            ("MRSEAM", body + 16, .quoteSignature),
            ("TD attributes", body + 120, .quoteSignature),
            ("MRTD", body + 136, .quoteSignature),
            ("RTMR3", body + 520 - 48, .quoteSignature),
            ("report data", body + 520, .quoteSignature),
            ("quote signature", signatureData + 3, .quoteSignature),
            ("attestation key", signatureData + 64 + 3, .qeReportDataBinding),
            ("QE report", qe + 100, .qeReportSignature),
            ("QE report signature", qe + 384 + 7, .qeReportSignature),
            ("QE authentication data", qe + 384 + 64 + 2 + 1, .qeReportDataBinding),
        ]
        if v5 {
            regions.append(("TEE_TCB_SVN2", body + 584 + 1, .quoteSignature))
            regions.append(("MRSERVICETD", body + 600 + 9, .quoteSignature))
        }
        for (region, offset, check) in regions {
            var bytes = original
            bytes[offset] ^= 0x01
            let quote = try DCAPQuote(bytes: bytes)
            let time = v5 ? Self.outdatedTime : Self.phalaTime
            let failure = await #expect(throws: DCAPQuote.VerificationFailure.self, "\(region)") {
                try await quote.verifySignatures(trustAnchors: Self.anchors.map(\.certificate), at: time)
            }
            #expect(failure?.check == check, "\(region): \(String(describing: failure))")
        }
    }

    @Test func tamperedTDXCollateralFailsItsSignature() async {
        let tcb = await failure(Self.phalaQuote, Self.phalaCollateral, at: Self.phalaTime) { collateral in
            let text = String(decoding: collateral.tcbInfoBytes, as: UTF8.self)
            collateral.tcbInfoBytes = Array(text.replacingOccurrences(of: "\"isvsvn\":4", with: "\"isvsvn\":9").utf8)
        }
        #expect(tcb == .tcbInfoSignature)
        let qe = await failure(Self.phalaQuote, Self.phalaCollateral, at: Self.phalaTime) {
            $0.qeIdentitySignature[10] ^= 1
        }
        #expect(qe == .qeIdentitySignature)
    }

    @Test func sgxCollateralDoesNotVerifyATDXQuote() async {
        let check = await failure(
            Self.phalaQuote,
            "sgx/phala-dcap-qvl/sgx_quote_collateral.json",
            at: Date(timeIntervalSince1970: 1_752_919_234)
        )
        #expect(check != nil)
        // The QE identity check itself: SGX's QE identity is not the TD quoting enclave's.
        let quote = try? DCAPQuote(bytes: Vectors.bytes(Self.phalaQuote))
        let sgxCollateral = try? Collateral(dcapQVLJSON: Vectors.bytes("sgx/phala-dcap-qvl/sgx_quote_collateral.json"))
        guard let quote, let sgxCollateral, let identity = try? QEIdentity(jsonBytes: sgxCollateral.qeIdentityBytes)
        else {
            Issue.record("vectors missing")
            return
        }
        let failure = #expect(throws: DCAPQuote.VerificationFailure.self) { try quote.checkQuotingEnclave(identity) }
        #expect(failure?.check == .qeIdentity)
        #expect(failure?.reason.contains("TD_QE") == true)
    }

    @Test func v5BodyTypeMustFitTheTEEAndItsSize() throws {
        var bytes = try Vectors.bytes(Self.v5Sample)
        bytes[48] = 1  // SGX body type in a TDX quote
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: bytes) }
        bytes = try Vectors.bytes(Self.v5Sample)
        bytes[50] ^= 0x01  // body size
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: bytes) }
        bytes = try Vectors.bytes(Self.phalaQuote)
        bytes[0] = 3  // version 3 cannot carry a TD report
        expectEnclaveError(.malformedInput) { try DCAPQuote(bytes: bytes) }
    }

    // MARK: TCB evaluation as Intel specifies it

    /// A TDX TCB info whose one level every platform reaches, with one module identity (`TDX_01`): minor SVN 13
    /// and above up to date, below it out of date.
    static func tcbInfo(
        moduleID: String = "TDX_01",
        moduleSigner: String = String(repeating: "00", count: 48)
    ) -> String {
        let zeros = (0..<16).map { _ in "{\"svn\":0}" }.joined(separator: ",")
        return """
            {"id":"TDX","version":3,"issueDate":"2026-01-01T00:00:00Z","nextUpdate":"2026-02-01T00:00:00Z",\
            "fmspc":"90C06F000000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,\
            "tdxModule":{"mrsigner":"\(String(repeating: "00", count: 48))","attributes":"0000000000000000",\
            "attributesMask":"FFFFFFFFFFFFFFFF"},\
            "tdxModuleIdentities":[{"id":"\(moduleID)","mrsigner":"\(moduleSigner)","attributes":"0000000000000000",\
            "attributesMask":"FFFFFFFFFFFFFFFF","tcbLevels":[\
            {"tcb":{"isvsvn":13},"tcbDate":"2025-01-01T00:00:00Z","tcbStatus":"UpToDate"},\
            {"tcb":{"isvsvn":0},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"OutOfDate","advisoryIDs":["INTEL-SA-TEST"]}]}],\
            "tcbLevels":[{"tcb":{"sgxtcbcomponents":[\(zeros)],"pcesvn":0,"tdxtcbcomponents":[\(zeros)]},\
            "tcbDate":"2025-01-01T00:00:00Z","tcbStatus":"UpToDate"}]}
            """
    }

    /// The TDX module identity for the module's major version must name the module's signer and its SVN decides
    /// the module's status; a TD 1.5 launched on an out-of-date module that now runs a current one is advised to
    /// relaunch. (Unsigned TCB info fed to the evaluation step directly.)
    @Test func moduleIdentityAndRelaunch() throws {
        // Launch TEE_TCB_SVN 07 01 03…, now running 0d 01 03… (TD 1.5).
        let quote = try DCAPQuote(bytes: Vectors.bytes(Self.outdatedQuote))
        let leaf = try #require(try quote.pckChain().first)
        let value = try #require(leaf.extensions.first { $0.oid == SGXExtensions.oid }?.value)
        let platform = try SGXExtensions(derEncoded: value)
        let qeLevel = QEIdentity.Level(isvSVN: 0, status: .upToDate, advisoryIDs: [])
        func evaluate(_ json: String) throws -> (status: TCBStatus, advisoryIDs: [String]) {
            try quote.evaluateTCB(TCBInfo(jsonBytes: Array(json.utf8)), platform: platform, qeLevel: qeLevel)
        }
        let relaunch = try evaluate(Self.tcbInfo())
        #expect(relaunch.status == .tdRelaunchAdvised)
        #expect(relaunch.advisoryIDs == ["INTEL-SA-TEST"])  // the module's advisory at launch
        let signer = #expect(throws: DCAPQuote.VerificationFailure.self) {
            try evaluate(Self.tcbInfo(moduleSigner: "01" + String(repeating: "00", count: 47)))
        }
        #expect(signer?.check == .tdxModule)
        let missing = #expect(throws: DCAPQuote.VerificationFailure.self) {
            try evaluate(Self.tcbInfo(moduleID: "TDX_03"))
        }
        #expect(missing?.check == .tdxModule)
        // The quoting enclave folds in after the relaunch advice, which stands (Intel's order).
        let staleQE = QEIdentity.Level(isvSVN: 0, status: .outOfDate, advisoryIDs: [])
        let withQE = try quote.evaluateTCB(
            TCBInfo(jsonBytes: Array(Self.tcbInfo().utf8)),
            platform: platform,
            qeLevel: staleQE
        )
        #expect(withQE.status == .tdRelaunchAdvised)
        // Without the module update since launch, the same out-of-date QE makes the TD out of date.
        let tdx10 = try DCAPQuote(bytes: Vectors.bytes(Self.phalaQuote))  // TEE_TCB_SVN 06 01 03…, TD 1.0
        let launchOnly = try tdx10.evaluateTCB(
            TCBInfo(jsonBytes: Array(Self.tcbInfo().utf8)),
            platform: platform,
            qeLevel: staleQE
        )
        #expect(launchOnly.status == .outOfDate)
    }

    @Test func statusConvergence() {
        #expect(TCBStatus.upToDate.converged(with: [.outOfDate]) == .outOfDate)
        #expect(TCBStatus.swHardeningNeeded.converged(with: [.upToDate, .outOfDate]) == .outOfDate)
        #expect(TCBStatus.configurationNeeded.converged(with: [.outOfDate]) == .outOfDateConfigurationNeeded)
        #expect(TCBStatus.upToDate.converged(with: [.upToDate, .revoked]) == .revoked)
        #expect(
            TCBStatus.configurationAndSWHardeningNeeded.converged(with: [.upToDate])
                == .configurationAndSWHardeningNeeded
        )
        #expect(TCBStatus.relaunchStatus(launch: .outOfDate, current: .upToDate) == .tdRelaunchAdvised)
        #expect(
            TCBStatus.relaunchStatus(launch: .outOfDateConfigurationNeeded, current: .upToDate)
                == .tdRelaunchAdvisedConfigurationNeeded
        )
        #expect(TCBStatus.relaunchStatus(launch: .outOfDate, current: .outOfDate) == .outOfDate)
        #expect(TCBStatus.relaunchStatus(launch: .upToDate, current: .upToDate) == .upToDate)
    }

    // MARK: Policy after cryptography

    /// Azure's TD lacks SEPT_VE_DISABLE: its quote verifies cryptographically (chain only: no collateral comes with
    /// it), then the default policy refuses it by name; relaxed for that, it still needs a TCB status (or the
    /// caller's word that none is needed). Debug and a bound service TD are refused the same way.
    @Test func policyRefusalsComeAfterVerification() async throws {
        let quote = try DCAPQuote(bytes: Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin"))
        let claims = try await quote.verifyChainOnly(anchors: Self.anchors, at: Self.phalaTime)
        #expect(claims.tdx?.septVEDisable == false)
        #expect(claims.notChecked == ["revocation", "TCB"] && claims.tcbStatus == nil)
        let violation = #expect(throws: EvidencePolicy.Violation.self) { try EvidencePolicy().check(claims) }
        #expect(violation?.requirement == "SEPT_VE_DISABLE")
        #expect(violation?.setting == "requireSEPTVEDisable")
        var relaxed = EvidencePolicy()
        relaxed.requireSEPTVEDisable = false
        let missing = #expect(throws: EvidencePolicy.Violation.self) { try relaxed.check(claims) }
        #expect(missing?.requirement == "TCB status" && missing?.setting == "allowMissingTCBStatus")
        relaxed.allowMissingTCBStatus = true
        try relaxed.check(claims)

        var debug = try await verify(Self.phalaQuote, Self.phalaCollateral, at: Self.phalaTime)
        try EvidencePolicy().check(debug)  // control
        debug.debug = true
        #expect(
            (#expect(throws: EvidencePolicy.Violation.self) { try EvidencePolicy().check(debug) })?.requirement
                == "debug"
        )

        var service = try await verify(Self.v5Sample, Self.outdatedCollateral, at: Self.outdatedTime)
        try EvidencePolicy().check(service)  // control
        var bound = service
        bound.tdx?.mrServiceTD?[0] = 1
        #expect(
            (#expect(throws: EvidencePolicy.Violation.self) { try EvidencePolicy().check(bound) })?.requirement
                == "MRSERVICETD"
        )
        var statuses = EvidencePolicy()
        statuses.acceptedTCBStatuses = [.upToDate]
        try statuses.check(service)
        service.tcbStatus = .outOfDate
        #expect(
            (#expect(throws: EvidencePolicy.Violation.self) { try statuses.check(service) })?.requirement
                == "TCB status"
        )
    }
}
