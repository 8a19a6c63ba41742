internal import Attestation
internal import AttestationClient
internal import EnclaveCore
internal import Foundation
internal import X509

extension AttestationServiceCore {
    /// The verified claims of `evidence` for `type`, or a ``ServiceError`` naming the failed check.
    func verifyEvidence(type: AttestationType, evidence bytes: [UInt8], at time: Date) async throws -> Claims {
        do {
            // Azure vTPM evidence only on its own TEE's route: TDX vTPM on TdxVm, SEV-SNP vTPM on SevSnpVm.
            if type == .tdxVm || type == .sevSnpVm, let vtpm = try AzureVTPMEvidence.parseIfPresent(json: bytes) {
                return try await verifyAzureVTPMOnRoute(vtpm, type: type, at: time)
            }
            switch type {
            case .sgxEnclave, .openEnclave, .tdxVm, .simulatedEnclave:
                let quote = try DCAPQuote(bytes: type == .openEnclave ? Self.stripOpenEnclaveHeader(bytes) : bytes)
                guard quote.isTDX == (type == .tdxVm) else {
                    throw ServiceError.badRequest(
                        "WrongEvidenceType",
                        "the quote is \(quote.isTDX ? "a TDX" : "an SGX") quote, not evidence for \(type.rawValue)"
                    )
                }
                if type == .simulatedEnclave {
                    guard configuration.allowSimulated, let anchor = configuration.simulatedAnchor else {
                        throw ServiceError.badRequest(
                            "SimulatedEvidenceNotAllowed",
                            "this service does not accept simulated evidence (start it with --allow-simulated)"
                        )
                    }
                    let anchors = [DCAPQuote.TrustAnchor(certificate: anchor, simulated: true)]
                    if let collateral = try configuration.simulatedCollateral?(time) {
                        return try await quote.verify(
                            anchors: anchors,
                            collateral: collateral,
                            at: time,
                            cache: verificationCache
                        )
                    }
                    return try await quote.verifyChainOnly(anchors: anchors, at: time)
                }
                // Real quotes need collateral (refused without it unless the operator allows chain-only).
                return try await verifyRealQuote(quote, at: time)
            case .sevSnpVm:
                return try await verifySEVSNP(bytes, at: time)
            }
        } catch let error as ServiceError {
            throw error
        } catch let failure as DCAPQuote.VerificationFailure {
            throw ServiceError.badRequest(
                "InvalidEvidence",
                "verification failed at \(failure.check.rawValue): \(failure.reason)"
            )
        } catch let failure as SEVSNPReport.VerificationFailure {
            throw ServiceError.badRequest(
                "InvalidEvidence",
                "verification failed at \(failure.check.rawValue): \(failure.reason)"
            )
        } catch let failure as AzureVTPMEvidence.VerificationFailure {
            throw ServiceError.badRequest(
                "InvalidEvidence",
                "verification failed at \(failure.check): \(failure.reason)"
            )
        } catch let error as EnclaveError {
            throw ServiceError.badRequest("InvalidEvidence", "the evidence does not parse: \(error.reason)")
        } catch {
            throw ServiceError.badRequest("InvalidEvidence", "the evidence does not verify: \(error)")
        }
    }

    /// SEV-SNP evidence: a JSON document — MAA's `{"SnpReport": base64url, "VcekCertChain": base64url(PEM),
    /// "Endorsements": …}` (endorsements are not used), Azure vTPM evidence (`hcl_report`, `tpm_quote`, `vcek`),
    /// or `{"report": base64url, "vcek": base64url DER or PEM, "certificates": base64url configfs-tsm auxblob}`.
    func verifySEVSNP(_ bytes: [UInt8], at time: Date) async throws -> Claims {
        if let evidence = try AzureVTPMEvidence.parseIfPresent(json: bytes) {
            return try await evidence.verify(at: time)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let reportText = (object["report"] ?? object["SnpReport"]) as? String,
            let report = Base64URL.decode(reportText)
        else {
            throw ServiceError.badRequest(
                "InvalidEvidence",
                "SEV-SNP evidence is a JSON object with SnpReport and VcekCertChain (MAA's shape), or report and vcek or certificates"
            )
        }
        var leaf: AMDCertificate?
        var chain: [AMDCertificate] = []
        if let tableText = object["certificates"] as? String, let table = Base64URL.decode(tableText) {
            let parsed = try SEVSNPCertificateTable(bytes: table)
            leaf = parsed.vcek ?? parsed.vlek
            chain = [parsed.ask, parsed.ark].compactMap { $0 }
        }
        if let chainText = object["VcekCertChain"] as? String {
            // MAA's shape: base64url of the PEM chain, VCEK (or VLEK) first.
            guard let pem = Base64URL.decode(chainText) else {
                throw ServiceError.badRequest("InvalidBase64", "VcekCertChain is not base64url")
            }
            let certificates = try AMDCertificate.parseAll(pem)
            leaf = certificates.first
            chain += certificates.dropFirst()
        }
        if let vcekText = object["vcek"] as? String {
            let certificates =
                vcekText.hasPrefix("-----BEGIN")
                ? try AMDCertificate.parseAll(Array(vcekText.utf8))
                : try AMDCertificate.parseAll(Base64URL.decode(vcekText) ?? [])
            leaf = certificates.first
            chain += certificates.dropFirst()
        }
        guard let leaf else {
            throw ServiceError.badRequest("InvalidEvidence", "the SEV-SNP evidence has no VCEK or VLEK")
        }
        return try SEVSNPReport(bytes: report).verify(signingCertificate: leaf, chain: chain, at: time)
    }

    /// Open Enclave wraps remote reports in a 16-byte header (version 1, type 2 = remote, size); bare quotes pass.
    static func stripOpenEnclaveHeader(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count > 16, bytes[0] == 1, bytes[1...3].allSatisfy({ $0 == 0 }), bytes[4] == 2,
            bytes[5...7].allSatisfy({ $0 == 0 })
        else { return bytes }
        let size = bytes[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        guard size == UInt64(bytes.count - 16) else { return bytes }
        return Array(bytes[16...])
    }
}
