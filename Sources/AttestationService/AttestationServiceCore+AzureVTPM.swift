internal import Attestation
internal import Foundation

extension AttestationServiceCore {
    /// Azure vTPM evidence on the route of its own TEE, or `WrongEvidenceType`: a TDX vTPM document is not SEV-SNP
    /// evidence, whatever the paravisor's layer says. The TPM quote's PCRs and nonce become claims
    /// (``EvidenceClaims``), so that the token names the guest, not only the paravisor.
    func verifyAzureVTPMOnRoute(
        _ evidence: AzureVTPMEvidence,
        type: AttestationType,
        at time: Date
    ) async throws -> Claims {
        let tee: AttestationType =
            switch evidence.hardware {
            case .tdx: .tdxVm
            case .sevSNP: .sevSnpVm
            }
        guard tee == type else {
            throw ServiceError.badRequest(
                "WrongEvidenceType",
                "the evidence is Azure vTPM evidence of a \(tee == .tdxVm ? "TDX" : "SEV-SNP") VM, not evidence for "
                    + type.rawValue
            )
        }
        return try await verifyAzureVTPM(evidence, at: time)
    }
}
