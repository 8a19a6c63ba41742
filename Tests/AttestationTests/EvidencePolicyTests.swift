import EnclaveCore
import Foundation
import Testing

@testable import Attestation

/// The policy's defaults fail closed: what is not established (no TCB status) or is known bad (revoked, out of
/// date, debug, VMPL above 0) is refused unless the caller says otherwise.
@Suite("Evidence policy: fail-closed defaults")
struct EvidencePolicyTests {
    /// Real SGX claims with full collateral (ConfigurationAndSWHardeningNeeded), to vary.
    static func sgxClaims() async throws -> Claims {
        let quote = try DCAPQuote(bytes: Vectors.bytes(CollateralTests.quotePath))
        return try await quote.verify(
            anchors: [.init(certificate: IntelRoots.sgxRootCA, simulated: false)],
            collateral: Collateral(dcapQVLJSON: Vectors.bytes(CollateralTests.collateralPath)),
            at: CollateralTests.time
        )
    }

    static func requirement(_ policy: EvidencePolicy, _ claims: Claims) -> String? {
        do {
            try policy.check(claims)
            return nil
        } catch {
            return error.requirement
        }
    }

    @Test func defaultRefusesRevokedMissingAndOutOfDateStatus() async throws {
        let claims = try await Self.sgxClaims()
        #expect(claims.tcbStatus == .configurationAndSWHardeningNeeded)
        try EvidencePolicy().check(claims)  // control: a current platform that needs configuration passes
        for status in [TCBStatus.upToDate, .swHardeningNeeded, .configurationNeeded] {
            var current = claims
            current.tcbStatus = status
            try EvidencePolicy().check(current)
        }
        var revoked = claims
        revoked.tcbStatus = .revoked
        #expect(Self.requirement(EvidencePolicy(), revoked) == "TCB status")
        var missing = claims
        missing.tcbStatus = nil
        #expect(Self.requirement(EvidencePolicy(), missing) == "TCB status")
        for status in [TCBStatus.outOfDate, .outOfDateConfigurationNeeded, .tdRelaunchAdvised] {
            var stale = claims
            stale.tcbStatus = status
            #expect(Self.requirement(EvidencePolicy(), stale) == "TCB status", "\(status)")
        }
    }

    /// Each refusal names the setting that accepts it; the settings accept exactly what they say. `Revoked` is
    /// refused whatever the accepted set holds.
    @Test func settingsAcceptWhatTheyName() async throws {
        let claims = try await Self.sgxClaims()
        var stale = claims
        stale.tcbStatus = .outOfDate
        #expect(
            throws: EvidencePolicy.Violation(
                requirement: "TCB status",
                reason: "the TCB status OutOfDate is not accepted",
                setting: "allowOutOfDate"
            )
        ) { try EvidencePolicy().check(stale) }
        var outOfDate = EvidencePolicy()
        outOfDate.allowOutOfDate = true
        #expect(outOfDate.allowOutOfDate && !EvidencePolicy().allowOutOfDate)
        for status in EvidencePolicy.outOfDateTCBStatuses {
            stale.tcbStatus = status
            try outOfDate.check(stale)
        }
        var missing = claims
        missing.tcbStatus = nil
        let missingStatus = #expect(throws: EvidencePolicy.Violation.self) { try outOfDate.check(missing) }
        #expect(missingStatus?.setting == "allowMissingTCBStatus", "\(String(describing: missingStatus))")
        var chainOnly = EvidencePolicy()
        chainOnly.allowMissingTCBStatus = true
        try chainOnly.check(missing)
        var revoked = claims
        revoked.tcbStatus = .revoked
        var everything = EvidencePolicy()
        everything.acceptedTCBStatuses = Set(TCBStatus.allCases)
        everything.allowMissingTCBStatus = true
        let refusal = #expect(throws: EvidencePolicy.Violation.self) { try everything.check(revoked) }
        #expect(refusal?.requirement == "TCB status" && refusal?.setting == nil)
        // SEV-SNP claims carry no TCB status: the missing-status rule is for SGX and TDX.
        let snp = try SEVSNPTests.report("snp/trustee/test-report.bin").verify(
            signingCertificate: SEVSNPTests.certificate("snp/trustee/test-vcek.der"),
            at: SEVSNPTests.time
        )
        #expect(snp.tcbStatus == nil)
        try EvidencePolicy().check(snp)
        #expect(EvidencePolicy.failClosed == EvidencePolicy())
    }

    @Test func defaultRefusesVMPLAboveZero() throws {
        let report = try SEVSNPTests.report("snp/trustee/test-vlek-report.bin")
        let claims = try report.verify(
            signingCertificate: SEVSNPTests.certificate("snp/trustee/test-vlek.der"),
            at: SEVSNPTests.time
        )
        #expect(claims.sevSNP?.vmpl == 1)
        #expect(Self.requirement(EvidencePolicy(), claims) == "VMPL")
        var relaxed = EvidencePolicy()
        relaxed.maximumVMPL = 1
        try relaxed.check(claims)
    }
}
