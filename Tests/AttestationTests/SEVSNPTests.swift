import EnclaveCore
import Foundation
import TestSupport
import Testing

@testable import Attestation

/// Real SEV-SNP reports and AMD certificates from Tests/Vectors, with the outcomes its MANIFEST states. The SNP
/// vectors have no time of their own: 2025-07-19 lies inside every VCEK's and the VLEK's validity.
@Suite("SEV-SNP reports and AMD's key hierarchy")
struct SEVSNPTests {
    static let time = Date(timeIntervalSince1970: 1_752_919_234)

    static func certificate(_ path: String) throws -> AMDCertificate {
        try #require(try AMDCertificate.parseAll(Vectors.bytes(path)).first)
    }

    static func report(_ path: String) throws -> SEVSNPReport {
        let bytes = try Vectors.bytes(path)
        if path.hasSuffix(".hex") {
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return try SEVSNPReport(bytes: try #require(Hex.decode(text)))
        }
        return try SEVSNPReport(bytes: bytes)
    }

    /// (report, signing certificate, signing key): each verifies under AMD's shipped Milan roots.
    static let verifying: [(String, String, String)] = [
        ("snp/google-go-sev-guest/attestation.bin", "snp/google-go-sev-guest/vcek.testcer", "VCEK"),
        ("snp/trustee/test-report.bin", "snp/trustee/test-vcek.der", "VCEK"),
        ("snp/virtee-sev/report_milan.hex", "snp/virtee-sev/vcek_milan.der", "VCEK"),
        ("snp/trustee/test-vlek-report.bin", "snp/trustee/test-vlek.der", "VLEK"),
    ]

    @Test(arguments: verifying)
    func realReportsVerify(_ reportPath: String, _ certificatePath: String, _ key: String) throws {
        let report = try Self.report(reportPath)
        let claims = try report.verify(signingCertificate: Self.certificate(certificatePath), at: Self.time)
        #expect(claims.format == "sev-snp")
        #expect(!claims.simulated)
        let snp = try #require(claims.sevSNP)
        #expect(snp.productName == "Milan")
        #expect(snp.signingKey == key)
        #expect(snp.measurement == report.measurement && snp.measurement.count == 48)
        #expect(claims.reportData == report.reportData)
        #expect(claims.tcbStatus == nil)  // AMD publishes no TCB status collateral
    }

    @Test func goSEVGuestReportHasTheStatedTCBAndChipAndItsDebugPolicyIsRefused() throws {
        let report = try Self.report("snp/google-go-sev-guest/attestation.bin")
        #expect(report.version == 2)
        let claims = try report.verify(
            signingCertificate: Self.certificate("snp/google-go-sev-guest/vcek.testcer"),
            at: Self.time
        )
        let snp = try #require(claims.sevSNP)
        #expect(snp.reportedTCB.bootloader == 2 && snp.reportedTCB.tee == 0)
        #expect(snp.reportedTCB.snp == 5 && snp.reportedTCB.microcode == 68)
        #expect(Hex.encode(snp.chipID).hasPrefix("3ac3fe21"))
        #expect(snp.policy.debugAllowed && claims.debug)
        let violation = #expect(throws: EvidencePolicy.Violation.self) { try EvidencePolicy().check(claims) }
        #expect(violation?.requirement == "debug")
        // go-sev-guest: the report verifies as Milan stepping B0; requiring another stepping refuses it.
        #expect(snp.certifiedProduct == "Milan-B0")
        var policy = EvidencePolicy()
        policy.allowDebug = true
        policy.sevSNPProducts = ["Milan-B0"]
        try policy.check(claims)
        policy.sevSNPProducts = ["Milan-B12"]
        let stepping = #expect(throws: EvidencePolicy.Violation.self) { try policy.check(claims) }
        #expect(stepping?.requirement == "product")
    }

    @Test func vlekReportIsVersion3AtVMPL1WithItsChipIDZeroed() throws {
        let report = try Self.report("snp/trustee/test-vlek-report.bin")
        #expect(report.version == 3 && report.vmpl == 1 && report.signingKey == .vlek)
        let claims = try report.verify(signingCertificate: Self.certificate("snp/trustee/test-vlek.der"), at: Self.time)
        // VMPL 0 by default (fail closed); accepted when the caller allows VMPL 1.
        #expect(
            (#expect(throws: EvidencePolicy.Violation.self) { try EvidencePolicy().check(claims) })?.requirement
                == "VMPL"
        )
        var relaxed = EvidencePolicy()
        relaxed.maximumVMPL = 1
        try relaxed.check(claims)
        // The VLEK expired on 2025-12-10: today it no longer verifies.
        let expired = #expect(throws: SEVSNPReport.VerificationFailure.self) {
            try report.verify(
                signingCertificate: Self.certificate("snp/trustee/test-vlek.der"),
                at: Date(timeIntervalSince1970: 1_795_938_029)
            )
        }
        #expect(expired?.check == .certificateChain)
    }

    @Test func serialNumberZeroIsAccepted() throws {
        for path in ["snp/google-go-sev-guest/vcek.testcer", "snp/trustee/test-vcek.der"] {
            #expect(try Self.certificate(path).serialNumber == [0])
        }
    }

    // MARK: Tampering: each check named

    /// trustee: byte 42 + 1 breaks the signature, byte 384 + 1 (reported TCB) breaks the TCB check; virtee: bit
    /// 0x80 of byte 21 breaks verification. Every signed region is covered in steps.
    @Test func tamperedReportsFailTheirCheck() throws {
        let original = try Vectors.bytes("snp/trustee/test-report.bin")
        let vcek = try Self.certificate("snp/trustee/test-vcek.der")
        func check(_ offset: Int, _ change: (inout UInt8) -> Void) throws -> SEVSNPReport.Check? {
            var bytes = original
            change(&bytes[offset])
            guard let report = try? SEVSNPReport(bytes: bytes) else { return nil }  // refused at parsing
            do {
                _ = try report.verify(signingCertificate: vcek, at: Self.time)
                return nil
            } catch let failure as SEVSNPReport.VerificationFailure {
                return failure.check
            }
        }
        #expect(try check(42) { $0 &+= 1 } == .reportSignature)
        #expect(try check(384) { $0 &+= 1 } == .reportedTCB)
        #expect(try check(0x1A0 + 5) { $0 ^= 1 } == .chipID)
        #expect(try check(0x2A0 + 3) { $0 ^= 1 } == .reportSignature)  // r
        #expect(try check(0x2A0 + 72 + 3) { $0 ^= 1 } == .reportSignature)  // s
        for offset in [4, 8, 0x10, 0x20, 0x38, 0x40, 0x50, 0x90, 0xC0, 0xE0, 0x110, 0x140, 0x160, 0x1E0, 0x1F0] {
            #expect(try check(offset) { $0 ^= 0x04 } == .reportSignature, "offset \(offset)")
        }
        var virtee = try Vectors.bytes("derived/decoded-hex/virtee_report_milan.bin")
        virtee[21] ^= 0x80
        expectAttestationError(.reportSignature) {
            try SEVSNPReport(bytes: virtee).verify(
                signingCertificate: Self.certificate("snp/virtee-sev/vcek_milan.der"),
                at: Self.time
            )
        }
    }

    @Test func malformedReportsAreRefusedAtParsing() throws {
        let original = try Vectors.bytes("snp/trustee/test-report.bin")
        for length in stride(from: 0, to: original.count, by: 37) {
            expectEnclaveError(.malformedInput) { try SEVSNPReport(bytes: Array(original.prefix(length))) }
        }
        expectEnclaveError(.malformedInput) { try SEVSNPReport(bytes: original + [0]) }
        for (offset, value, what) in [
            (0, UInt8(1), "version 1"), (0, 9, "version 9"), (0x30, 4, "VMPL 4"), (0x34, 2, "signature algorithm"),
            (0x48, 0x08, "signing key 2"), (0x2A0 + 60, 1, "r above 48 bytes"), (0x4A0 - 1, 1, "signature reserved"),
        ] {
            var bytes = original
            bytes[offset] = value
            expectEnclaveError(.malformedInput, "\(what)") { try SEVSNPReport(bytes: bytes) }
        }
    }

    @Test func aVCEKForAnotherReportOrTheWrongKeyKindIsRefused() throws {
        let report = try Self.report("snp/trustee/test-report.bin")
        // Another chip's VCEK: its TCB or hardware ID differs (or, failing those, the signature).
        let other = #expect(throws: SEVSNPReport.VerificationFailure.self) {
            try report.verify(
                signingCertificate: Self.certificate("snp/google-go-sev-guest/vcek.testcer"),
                at: Self.time
            )
        }
        #expect(other.map { [.reportedTCB, .chipID, .reportSignature].contains($0.check) } == true)
        // A VLEK for a report that names the VCEK.
        let kind = #expect(throws: SEVSNPReport.VerificationFailure.self) {
            try report.verify(signingCertificate: Self.certificate("snp/trustee/test-vlek.der"), at: Self.time)
        }
        #expect(kind?.check == .signingKey)
    }

    // MARK: The chain

    @Test func shippedRootsAndIntermediatesVerify() throws {
        #expect(AMDRoots.arks.map(\.commonName) == ["ARK-Milan", "ARK-Genoa", "ARK-Turin"])
        #expect(AMDRoots.intermediates.count == 6)
        for ark in AMDRoots.arks { #expect(ark.isSigned(by: ark), "\(ark.commonName ?? "")") }
        for intermediate in AMDRoots.intermediates {
            #expect(AMDRoots.arks.contains { intermediate.isSigned(by: $0) }, "\(intermediate.commonName ?? "")")
        }
        // The shipped certificates are the ones virtee and go-sev-guest embed.
        for path in ["snp/virtee-sev/builtin_milan_ark.pem", "snp/virtee-sev/builtin_turin_ask.pem"] {
            let certificate = try Self.certificate(path)
            #expect((AMDRoots.arks + AMDRoots.intermediates).contains(certificate))
        }
    }

    /// Every ASK/ASVK/ARK bundle among the vectors: each ARK is a shipped root (self-signed), each ASK or ASVK
    /// is signed by its generation's ARK.
    @Test(arguments: [
        "snp/google-go-sev-guest/milan.testcer", "snp/google-go-sev-guest/milanvlek.testcer",
        "snp/google-go-sev-guest/trust_ask_ark_genoa.pem", "snp/google-go-sev-guest/trust_ask_ark_genoa_vlek.pem",
        "snp/google-go-sev-guest/trust_ask_ark_turin_vcek.pem", "snp/google-go-sev-guest/trust_ask_ark_turin_vlek.pem",
        "snp/trustee/milan_ask_ark_asvk.pem", "snp/trustee/genoa_ask_ark_asvk.pem",
        "snp/trustee/turin_ask_ark_asvk.pem",
        "snp/virtee-sev/cert_chain_milan", "snp/virtee-sev/cert_chain_turin", "snp/virtee-sev/builtin_genoa_ask.pem",
        "snp/virtee-sev/builtin_genoa_ark.pem", "snp/virtee-sev/builtin_milan_ask.pem",
        "snp/virtee-sev/builtin_turin_ark.pem",
    ])
    func caBundlesChainToTheShippedRoots(_ path: String) throws {
        let certificates = try AMDCertificate.parseAll(Vectors.bytes(path))
        #expect(!certificates.isEmpty)
        for certificate in certificates {
            if certificate.subjectBytes == certificate.issuerBytes {
                #expect(AMDRoots.arks.contains(certificate), "\(certificate.commonName ?? "")")
                #expect(certificate.isSigned(by: certificate))
            } else {
                #expect(AMDRoots.arks.contains { certificate.isSigned(by: $0) }, "\(certificate.commonName ?? "")")
            }
        }
    }

    @Test(arguments: [
        ("snp/virtee-sev/vcek_milan.der", "snp/virtee-sev/cert_chain_milan", "Milan"),
        ("snp/virtee-sev/vcek_turin.der", "snp/virtee-sev/cert_chain_turin", "Turin"),
        ("snp/trustee/test-vcek.der", "snp/trustee/milan_ask_ark_asvk.pem", "Milan"),
        ("snp/trustee/test-vlek.der", "snp/trustee/milan_ask_ark_asvk.pem", "Milan"),
        ("snp/google-go-sev-guest/vcek.testcer", "snp/google-go-sev-guest/milan.testcer", "Milan"),
    ])
    func vcekChainsVerify(_ leaf: String, _ chain: String, _ product: String) throws {
        let (intermediate, root) = try SEVSNPReport.validateChain(
            leaf: Self.certificate(leaf),
            chain: AMDCertificate.parseAll(Vectors.bytes(chain)),
            at: Self.time
        )
        #expect(root.commonName == "ARK-\(product)")
        #expect(intermediate.commonName?.hasSuffix(product) == true)
    }

    /// virtee: byte 40 of the VCEK flipped fails the chain; trustee's synthetic VCEKs (legacy raw and new
    /// OCTET STRING hardware IDs) parse, and fail the chain because their signatures are invalid.
    @Test func tamperedOrSyntheticVCEKsFailTheChain() throws {
        var bytes = try Vectors.bytes("snp/virtee-sev/vcek_milan.der")
        bytes[40] ^= 0x01
        if let tampered = try? AMDCertificate(derEncoded: bytes) {
            let failure = #expect(throws: SEVSNPReport.VerificationFailure.self) {
                try SEVSNPReport.validateChain(leaf: tampered, at: Self.time)
            }
            #expect(failure?.check == .certificateChain)
        }
        let expected = (0..<20).map { UInt8($0) }
        for path in ["snp/trustee/test-vcek-invalid-legacy.der", "snp/trustee/test-vcek-invalid-new.der"] {
            let vcek = try Self.certificate(path)
            let hardwareID = try #require(vcek.extensions[SEVSNPReport.ExtensionOID.hardwareID])
            #expect(Array(SEVSNPReport.unwrapHardwareID(hardwareID).prefix(20)) == expected, "\(path)")
            let failure = #expect(throws: SEVSNPReport.VerificationFailure.self) {
                try SEVSNPReport.validateChain(leaf: vcek, at: Self.time)
            }
            #expect(failure?.check == .certificateChain)
        }
    }

    @Test func aChainToAnUntrustedRootOrOutsideItsWindowFails() throws {
        let vcek = try Self.certificate("snp/virtee-sev/vcek_milan.der")
        let genoaOnly = AMDRoots.arks.filter { $0.commonName == "ARK-Genoa" }
        let untrusted = #expect(throws: SEVSNPReport.VerificationFailure.self) {
            try SEVSNPReport.validateChain(leaf: vcek, roots: genoaOnly, at: Self.time)
        }
        #expect(untrusted?.check == .certificateChain)
        // VCEK valid 2023-04-03 .. 2030-04-03: one second before is refused.
        let before = vcek.notValidBefore.addingTimeInterval(-1)
        expectAttestationError(.certificateChain) { try SEVSNPReport.validateChain(leaf: vcek, at: before) }
        _ = try SEVSNPReport.validateChain(leaf: vcek, at: vcek.notValidBefore)
        let after = vcek.notValidAfter.addingTimeInterval(1)
        expectAttestationError(.certificateChain) { try SEVSNPReport.validateChain(leaf: vcek, at: after) }
    }

    @Test func certificateParsingRefusesGarbage() throws {
        let der = try Vectors.bytes("snp/virtee-sev/vcek_milan.der")
        for length in stride(from: 0, to: der.count, by: 13) {
            expectEnclaveError(.malformedInput) { try AMDCertificate(derEncoded: Array(der.prefix(length))) }
        }
        expectEnclaveError(.malformedInput) { try AMDCertificate(derEncoded: der + [0]) }
        expectEnclaveError(.malformedInput) { try AMDCertificate.parseAll(Array("not a certificate".utf8)) }
    }

    // MARK: Evidence containers

    /// A configfs-tsm auxblob (the GUID certificate table) carries the VCEK, ASK and ARK.
    @Test func configfsTSMCertificateTable() throws {
        let vcek = try Vectors.bytes("snp/trustee/test-vcek.der")
        let chain = try AMDCertificate.parseAll(Vectors.bytes("snp/trustee/milan_ask_ark_asvk.pem"))
        let ask = chain[0].derBytes
        let ark = chain[1].derBytes
        let table = SEVSNPCertificateTable.encode(vcek: vcek, ask: ask, ark: ark)
        // The kernel's layout, checked by hand: 24-byte entries (GUID, offset, length), a zero entry, then the DER.
        func le32(_ at: Int) -> Int { table[at..<at + 4].reversed().reduce(0) { $0 << 8 | Int($1) } }
        #expect(le32(16) == 96 && le32(20) == vcek.count)
        #expect(le32(40) == 96 + vcek.count && le32(44) == ask.count)
        #expect(le32(64) == 96 + vcek.count + ask.count && le32(68) == ark.count)
        #expect(table[72..<96].allSatisfy { $0 == 0 })
        #expect(Array(table[96..<96 + vcek.count]) == vcek && table.count == 96 + vcek.count + ask.count + ark.count)
        #expect(SEVSNPCertificateTable.looksLikeTable(table))
        let parsed = try SEVSNPCertificateTable(bytes: table)
        #expect(parsed.vcek?.derBytes == vcek && parsed.ask?.derBytes == ask && parsed.ark?.derBytes == ark)
        let report = try Self.report("snp/trustee/test-report.bin")
        _ = try report.verify(
            signingCertificate: try #require(parsed.vcek),
            chain: [parsed.ask, parsed.ark].compactMap { $0 },
            at: Self.time
        )
        // An entry pointing past the end, and a table without its terminator, are refused.
        var outside = table
        outside[20] = 0xFF
        expectEnclaveError(.malformedInput) { try SEVSNPCertificateTable(bytes: outside) }
        expectEnclaveError(.malformedInput) { try SEVSNPCertificateTable(bytes: Array(table.prefix(72))) }
    }

    /// Azure's HCL report wraps a Milan SNP report that binds the paravisor's runtime data (with the vTPM key).
    @Test func azureHCLReport() throws {
        let bytes = try Vectors.bytes("azure-vtpm/trustee-az-snp-vtpm/hcl-report.bin")
        let hcl = try AzureHCLReport(bytes: bytes)
        guard case .sevSNP(let report) = hcl.hardwareReport else {
            Issue.record("not an SNP HCL report")
            return
        }
        let bundle = try AMDCertificate.parseAll(Vectors.bytes("azure-vtpm/trustee-az-snp-vtpm/vcek.pem"))
        let claims = try report.verify(signingCertificate: bundle[0], chain: Array(bundle.dropFirst()), at: Self.time)
        #expect(hcl.bindsRuntimeData(to: claims.reportData))
        #expect(try hcl.attestationKey()["kid"] == "HCLAkPub")
        // MANIFEST: byte 0x6e0 + 1 breaks the runtime data binding; byte 0x1a6 = 0 breaks the report (its TCB).
        var runtime = bytes
        runtime[0x6E0] &+= 1
        let changed = try AzureHCLReport(bytes: runtime)
        #expect(!changed.bindsRuntimeData(to: claims.reportData))
        var tcb = bytes
        tcb[0x1A6] = 0
        switch try AzureHCLReport(bytes: tcb).hardwareReport {
        case .sevSNP(let broken):
            expectAttestationError(.reportedTCB) {
                try broken.verify(signingCertificate: bundle[0], chain: Array(bundle.dropFirst()), at: Self.time)
            }
        default:
            Issue.record("the Azure SNP HCL report carries no SEV-SNP report")
        }
        // The TDX flavour binds its runtime data into the separate TD quote's report data.
        let tdxHCL = try AzureHCLReport(bytes: Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/hcl-report.bin"))
        let quote = try DCAPQuote(bytes: Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin"))
        #expect(tdxHCL.bindsRuntimeData(to: quote.reportData))
        var quoteBytes = try Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/hcl-report.bin")
        quoteBytes[0x880] &+= 1
        #expect(!(try AzureHCLReport(bytes: quoteBytes)).bindsRuntimeData(to: quote.reportData))
    }
}
