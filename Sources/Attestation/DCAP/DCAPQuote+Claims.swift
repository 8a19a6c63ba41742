public import Foundation
internal import X509

extension DCAPQuote {
    /// Verify only the quote's signatures and PCK chain, without collateral — an explicit, weaker choice than
    /// ``verify(anchors:collateral:at:cache:)``, for a caller or operator who asks for it.
    ///
    /// Checked: the PCK chain to one of `anchors` at `time`, the QE report's signature by the PCK key and its binding
    /// of the attestation key, the quote's signature, and the quoting enclave pinned to Intel's
    /// (``QuotingEnclaveIdentity/intel(tdx:)``: MRSIGNER, ISVPRODID, MISCSELECT and attributes under their masks), so
    /// a quoting enclave of one's own under a stand-in root is refused.
    /// Not checked: revocation (no CRLs), the TCB level and the QE's SVN (no TCB info, no QE identity). The claims
    /// say so in ``Claims/notChecked`` and carry no ``Claims/tcbStatus``, which ``EvidencePolicy`` refuses unless
    /// ``EvidencePolicy/allowMissingTCBStatus`` is set.
    /// - Throws: ``VerificationFailure`` naming the first check that failed.
    public func verifyChainOnly(anchors: [TrustAnchor], at time: Date) async throws -> Claims {
        let chain = try await verifySignatures(trustAnchors: anchors.map(\.certificate), at: time)
        try checkPinnedQuotingEnclave()
        var claims = claims(anchoredAt: chain, anchors: anchors)
        claims.notChecked = Claims.chainOnlyNotChecked
        return claims
    }

    /// The claims of the quote's body; `simulated` unless the validated path ends at a hardware anchor.
    func claims(anchoredAt path: [Certificate], anchors: [TrustAnchor]) -> Claims {
        let simulated = anchors.first { $0.certificate == path.last }?.simulated ?? true
        switch body {
        case .sgx(let report):
            return Claims(
                format: "sgx",
                simulated: simulated,
                debug: report.isDebug,
                reportData: report.reportData,
                sgx: Claims.SGX(
                    mrEnclave: report.mrEnclave,
                    mrSigner: report.mrSigner,
                    isvProductID: report.isvProductID,
                    isvSVN: report.isvSVN,
                    attributes: report.attributes,
                    miscSelect: report.miscSelect,
                    cpuSVN: report.cpuSVN,
                    configID: report.configID,
                    configSVN: report.configSVN,
                    isvFamilyID: report.isvFamilyID,
                    isvExtendedProductID: report.isvExtendedProductID
                )
            )
        case .td(let report):
            return Claims(
                format: "tdx",
                simulated: simulated,
                debug: report.isDebug,
                reportData: report.reportData,
                tdx: Claims.TDX(
                    mrTD: report.mrTD,
                    rtmrs: report.rtmrs,
                    mrSeam: report.mrSeam,
                    mrSignerSeam: report.mrSignerSeam,
                    seamAttributes: report.seamAttributes,
                    mrOwner: report.mrOwner,
                    mrConfigID: report.mrConfigID,
                    mrOwnerConfig: report.mrOwnerConfig,
                    tdAttributes: report.tdAttributesValue,
                    xfam: report.xfamValue,
                    teeTCBSVN: report.teeTCBSVN,
                    teeTCBSVN2: report.teeTCBSVN2,
                    mrServiceTD: report.mrServiceTD,
                    septVEDisable: report.septVEDisable
                )
            )
        }
    }
}
