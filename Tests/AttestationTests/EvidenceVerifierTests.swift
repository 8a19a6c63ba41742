import EnclaveCore
import Foundation
import Testing

@testable import Attestation

/// One evidence API: each format through ``EvidenceVerifier``, one error type whose code names the failed check, one
/// mapping of it to the service's MAA codes and the CLI's exit statuses, and policy outcomes listing every failure.
@Suite("Evidence verifier: one API for every format")
struct EvidenceVerifierTests {
    static let sgxQuote = "sgx/phala-dcap-qvl/sgx_quote"
    static let sgxCollateral = "sgx/phala-dcap-qvl/sgx_quote_collateral.json"
    static let sgxTime = Date(timeIntervalSince1970: 1_752_919_277)
    static let tdxQuote = "tdx/phala-dcap-qvl/tdx_quote"
    static let tdxCollateral = "tdx/phala-dcap-qvl/tdx_quote_collateral.json"
    static let tdxTime = Date(timeIntervalSince1970: 1_752_919_234)
    static let snpTime = Date(timeIntervalSince1970: 1_752_919_234)

    static func collateral(_ path: String) throws -> EvidenceVerifier.CollateralSource {
        .fixed(try Collateral(dcapQVLJSON: Vectors.bytes(path)))
    }

    /// The code of the error `body` throws, recording an issue if it throws none or another type.
    static func code(_ body: () async throws -> Void) async -> AttestationError.Code? {
        do {
            try await body()
            Issue.record("no error")
            return nil
        } catch let error as AttestationError {
            return error.code
        } catch {
            Issue.record("not an AttestationError: \(error)")
            return nil
        }
    }

    /// A configfs-tsm certificate table holding `vcek`, `ask`, `ark`.
    static func certificateTable(vcek: [UInt8], ask: [UInt8], ark: [UInt8]) -> [UInt8] {
        SEVSNPCertificateTable.encode(vcek: vcek, ask: ask, ark: ark)
    }

    // MARK: Formats

    @Test func realSGXQuoteWithCollateral() async throws {
        let evidence = try Evidence(detecting: Vectors.bytes(Self.sgxQuote))
        #expect(evidence.format == .sgx)
        #expect(evidence.maaRoute == "SgxEnclave")
        let verifier = EvidenceVerifier(collateral: try Self.collateral(Self.sgxCollateral))
        let claims = try await verifier.verify(evidence, at: Self.sgxTime)
        #expect(claims.format == "sgx")
        #expect(claims.tcbStatus == .configurationAndSWHardeningNeeded)
        #expect(claims.notChecked.isEmpty)
        // One second after the collateral's window: the code names the check.
        let late = await Self.code { _ = try await verifier.verify(evidence, at: Self.sgxTime + 1) }
        #expect(late == .collateralValidity)
    }

    @Test func realTDXQuoteWithCollateral() async throws {
        let evidence = try Evidence(detecting: Vectors.bytes(Self.tdxQuote))
        #expect(evidence.format == .tdx)
        #expect(evidence.maaRoute == "TdxVm")
        let verifier = EvidenceVerifier(collateral: try Self.collateral(Self.tdxCollateral))
        let claims = try await verifier.verify(evidence, at: Self.tdxTime)
        #expect(claims.format == "tdx")
        #expect(claims.tcbStatus == .upToDate)
        // Presented as SGX: refused as the wrong type, before any signature.
        let wrong = await Self.code {
            _ = try await verifier.verify(Evidence(format: .sgx, bytes: evidence.bytes), at: Self.tdxTime)
        }
        #expect(wrong == .wrongEvidenceType)
        let asked = await Self.code { _ = try Evidence(detecting: evidence.bytes, format: .sgx) }
        #expect(asked == .wrongEvidenceType)
    }

    /// Without collateral a real quote is refused by name; chain-only, where allowed, verifies but leaves no TCB
    /// status, which the fail-closed policy refuses naming its setting; tampered evidence is refused for itself.
    @Test func realQuoteWithoutCollateralFailsClosed() async throws {
        let evidence = try Evidence(detecting: Vectors.bytes(Self.sgxQuote))
        let missing = await Self.code { _ = try await EvidenceVerifier().verify(evidence, at: Self.sgxTime) }
        #expect(missing == .collateralUnavailable)

        let chainOnly = EvidenceVerifier(collateral: .none(allowsChainOnly: true))
        let outcome = await chainOnly.outcome(evidence, at: Self.sgxTime)
        let claims = try #require(outcome.claims)
        #expect(claims.notChecked == Claims.chainOnlyNotChecked)
        #expect(!outcome.accepted)
        #expect(outcome.violations.map(\.setting) == ["allowMissingTCBStatus"])
        var relaxed = EvidencePolicy.failClosed
        relaxed.allowMissingTCBStatus = true
        let accepted = EvidenceVerifier(collateral: .none(allowsChainOnly: true), policy: relaxed)
        #expect(try await accepted.verify(evidence, at: Self.sgxTime).tcbStatus == nil)

        var tampered = evidence
        tampered.bytes[tampered.bytes.count / 2] ^= 1
        let failed = await Self.code { _ = try await EvidenceVerifier().verify(tampered, at: Self.sgxTime) }
        #expect(failed != nil && failed != .collateralUnavailable)
        #expect(failed.map { AttestationError($0, "").serviceErrorCode } == "InvalidEvidence")
    }

    @Test func sevSNPReportWithItsCertificateTable() async throws {
        let report = try Vectors.bytes("snp/trustee/test-report.bin")
        let chain = try AMDCertificate.parseAll(Vectors.bytes("snp/trustee/milan_ask_ark_asvk.pem"))
        let table = Self.certificateTable(
            vcek: try Vectors.bytes("snp/trustee/test-vcek.der"),
            ask: chain[0].derBytes,
            ark: chain[1].derBytes
        )
        let evidence = try Evidence(AttestationEvidence(provider: "sev_guest", bytes: report, auxiliaryData: table))
        #expect(evidence.format == .sevSNP)
        #expect(evidence.maaRoute == "SevSnpVm")
        let claims = try await EvidenceVerifier().verify(evidence, at: Self.snpTime)
        #expect(claims.format == "sev-snp")
        #expect(claims.sevSNP?.productName == "Milan")

        // Detected from a file by the certificates given with it.
        let detected = try Evidence(detecting: report, auxiliaryData: table)
        #expect(detected == evidence)
        // The service's request document carries the table; reading it back gives the same evidence.
        let posted = try Evidence(serviceDocument: evidence.serviceDocument, route: evidence.maaRoute)
        #expect(posted == evidence)
        // Without any certificate: refused naming the certificate.
        let bare = await Self.code {
            _ = try await EvidenceVerifier().verify(Evidence(format: .sevSNP, bytes: report), at: Self.snpTime)
        }
        #expect(bare == .certificate)
        // Another report's VCEK: the SEV-SNP check that fails is named.
        let other = Evidence(
            format: .sevSNP,
            bytes: report,
            certificates: try Vectors.bytes("snp/virtee-sev/vcek_milan.der")
        )
        let mismatch = await Self.code { _ = try await EvidenceVerifier().verify(other, at: Self.snpTime) }
        #expect(mismatch != nil && mismatch != .malformedEvidence)
    }

    @Test func sevSNPVLEKReportAtVMPL1IsRefusedByPolicy() async throws {
        let evidence = Evidence(
            format: .sevSNP,
            bytes: try Vectors.bytes("snp/trustee/test-vlek-report.bin"),
            certificates: try Vectors.bytes("snp/trustee/test-vlek.der")
        )
        let outcome = await EvidenceVerifier().outcome(evidence, at: Self.snpTime)
        #expect(outcome.claims?.sevSNP?.vmpl == 1)
        #expect(outcome.violations.map(\.setting) == ["maximumVMPL"])
        var policy = EvidencePolicy.failClosed
        policy.maximumVMPL = 1
        _ = try await EvidenceVerifier(policy: policy).verify(evidence, at: Self.snpTime)
    }

    @Test func azureVTPMEvidence() async throws {
        let snp = try Evidence(detecting: Vectors.bytes("azure-vtpm/trustee-az-snp-vtpm/evidence-v1.json"))
        #expect(snp.format == .azureVTPM)
        #expect(snp.maaRoute == "SevSnpVm")
        let claims = try await EvidenceVerifier().verify(snp, at: Self.snpTime)
        #expect(claims.format == "sev-snp")
        #expect(claims.tpm != nil)

        let tdx = try Evidence(detecting: Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/evidence-v1.json"))
        #expect(tdx.format == .azureVTPM)
        #expect(tdx.maaRoute == "TdxVm")
        let missing = await Self.code { _ = try await EvidenceVerifier().verify(tdx, at: Self.snpTime) }
        #expect(missing == .collateralUnavailable)
        let chainOnly = await EvidenceVerifier(collateral: .none(allowsChainOnly: true)).outcome(tdx, at: Self.snpTime)
        #expect(chainOnly.claims?.tpm?.nonce == Array("challenge".utf8))
        #expect(chainOnly.violations.contains { $0.setting == "allowMissingTCBStatus" })
    }

    @Test func unknownProviderAndMalformedEvidence() async throws {
        let unknown = await Self.code { _ = try Evidence(AttestationEvidence(provider: "nitro", bytes: [1])) }
        #expect(unknown == .unsupportedFormat)
        let garbage = await Self.code {
            _ = try await EvidenceVerifier().verify(Evidence(format: .sgx, bytes: [1, 2, 3]), at: Self.sgxTime)
        }
        #expect(garbage == .malformedEvidence)
        let badRoute = await Self.code { _ = try Evidence(serviceDocument: Array("{}".utf8), route: "SevSnpVm") }
        #expect(badRoute == .malformedEvidence)
    }

    // MARK: Policies

    /// Every failure is listed, not only the first; rules compose with a result builder.
    @Test func outcomeListsEveryPolicyFailure() async throws {
        let evidence = try Evidence(detecting: Vectors.bytes(Self.sgxQuote))
        let expected = try Digest32(bytes: [UInt8](repeating: 0xAB, count: 32))
        let policy = EvidencePolicyRules {
            EvidencePolicy.failClosed
            EvidenceRequirement("MRENCLAVE") { claims in
                claims.sgx?.mrEnclave == expected
                    ? nil : EvidencePolicy.Violation(requirement: "MRENCLAVE", reason: "not the expected enclave")
            }
        }
        let verifier = EvidenceVerifier(collateral: .none(allowsChainOnly: true), policy: policy)
        let outcome = await verifier.outcome(evidence, at: Self.sgxTime)
        #expect(outcome.claims != nil && outcome.failure == nil)
        #expect(outcome.violations.map(\.requirement) == ["TCB status", "MRENCLAVE"])
        do {
            _ = try await verifier.verify(evidence, at: Self.sgxTime)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .policy)
            #expect(error.violations.count == 2)
            #expect(error.serviceErrorCode == "EvidencePolicyViolation")
            #expect(error.exitCode == 2)
        }

        // The fail-closed defaults list each refusal with its setting.
        var claims = try #require(outcome.claims)
        claims.simulated = true
        claims.debug = true
        claims.tcbStatus = .outOfDate
        #expect(
            EvidencePolicy.failClosed.violations(claims).map(\.setting) == [
                "allowSimulated", "allowDebug", "allowOutOfDate",
            ]
        )
        // `check` still throws the first.
        let first = #expect(throws: EvidencePolicy.Violation.self) { try EvidencePolicy.failClosed.check(claims) }
        #expect(first?.setting == "allowSimulated", "\(String(describing: first))")
        #expect(EvidencePolicy.failClosed.evaluate(claims) != .meetsPolicy)
    }

    // MARK: Error mapping

    @Test func errorCodesMapToServiceCodesAndExitStatuses() {
        let rows: [(AttestationError.Code, String, Int32)] = [
            (.policy, "EvidencePolicyViolation", 2),
            (.collateralUnavailable, "CollateralUnavailable", 3),
            (.collateralFetchFailed, "CollateralFetchFailed", 3),
            (.wrongEvidenceType, "WrongEvidenceType", 1),
            (.simulatedNotAllowed, "SimulatedEvidenceNotAllowed", 1),
            (.pckChain, "InvalidEvidence", 1),
            (.quoteSignature, "InvalidEvidence", 1),
            (.reportSignature, "InvalidEvidence", 1),
            (.tpmQuote, "InvalidEvidence", 1),
            (.malformedEvidence, "InvalidEvidence", 1),
            (.nonce, "InvalidEvidence", 1),
        ]
        for (code, service, exit) in rows {
            let error = AttestationError(code, "reason")
            #expect(error.serviceErrorCode == service, "\(code)")
            #expect(error.exitCode == exit, "\(code)")
            #expect(error.description == "verification failed at \(code): reason")
        }
        // The per-TEE verifiers throw the same error: their checks are its codes.
        let dcap = DCAPQuote.VerificationFailure(check: .qeIdentity, reason: "x")
        #expect(AttestationError(dcap as any Error).code == .qeIdentity)
        #expect(SEVSNPReport.VerificationFailure.self == AttestationError.self)
        #expect(AzureVTPMEvidence.VerificationFailure.self == AttestationError.self)
        #expect(AttestationError(TPMQuote.Failure(reason: "x")).code == .tpmQuote)
        #expect(AttestationError(EnclaveError.malformedInput("x")).code == .malformedEvidence)
        #expect(dcap.file.hasSuffix("EvidenceVerifierTests.swift"))
    }
}
