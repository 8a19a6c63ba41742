public import Foundation
public import X509

extension SGXQuote {
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

    /// The claims of the quote's report body; `simulated` unless the validated path ends at a hardware anchor.
    func claims(anchoredAt path: [Certificate], anchors: [TrustAnchor]) -> Claims {
        let simulated = anchors.first { $0.certificate == path.last }?.simulated ?? true
        return Claims(
            format: "sgx",
            uniqueID: reportBody.mrEnclave,
            signerID: reportBody.mrSigner,
            productID: reportBody.isvProductID,
            securityVersion: reportBody.isvSVN,
            debug: reportBody.isDebug,
            simulated: simulated,
            reportData: reportBody.reportData
        )
    }
}
