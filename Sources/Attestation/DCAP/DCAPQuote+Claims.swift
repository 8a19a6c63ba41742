public import Foundation
public import X509

extension DCAPQuote {
    /// A trust anchor, and whether it is a simulation root.
    public struct TrustAnchor: Sendable {
        public var certificate: Certificate
        public var simulated: Bool

        public init(certificate: Certificate, simulated: Bool) {
            self.certificate = certificate
            self.simulated = simulated
        }
    }

    /// Verify the quote's signature chain to one of `anchors` at `time` and return its claims; `simulated` is true
    /// when the chain ends at a simulation anchor. Collateral-based TCB evaluation is not part of this step.
    public func verify(anchors: [TrustAnchor], at time: Date) async throws -> Claims {
        let chain = try await verifySignatures(trustAnchors: anchors.map(\.certificate), at: time)
        return claims(anchoredAt: chain, anchors: anchors)
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
