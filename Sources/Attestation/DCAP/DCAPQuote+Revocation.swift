internal import Foundation
internal import X509

extension DCAPQuote {
    /// The CRL checks: signatures, windows, and the chain's certificates not listed.
    /// - Returns: the two CRLs, parsed (their windows bound a cache entry's).
    func checkRevocation(
        collateral: Collateral,
        chain: [Certificate],
        roots: [Certificate],
        at time: Date
    ) throws
        -> [CertificateRevocationList]
    {
        guard chain.count >= 2 else { throw VerificationFailure(check: .pckChain, reason: "no intermediate CA") }
        let rootCRL: CertificateRevocationList
        let pckCRL: CertificateRevocationList
        do {
            // Parsed once per collateral object and bytes; the signatures below are checked every time.
            rootCRL = try collateral.parsed.crl(collateral.rootCACRL)
            pckCRL = try collateral.parsed.crl(collateral.pckCRL)
        } catch {
            throw VerificationFailure(check: .crl, reason: error.reason)
        }
        guard roots.contains(where: { $0.subject == rootCRL.issuer && rootCRL.isSigned(by: $0) }) else {
            throw VerificationFailure(check: .crl, reason: "the root CA CRL is not signed by a trust anchor")
        }
        guard pckCRL.issuer == chain[1].subject, pckCRL.isSigned(by: chain[1]) else {
            throw VerificationFailure(check: .crl, reason: "the PCK CRL is not signed by the PCK certificate's issuer")
        }
        for (name, crl) in [("root CA", rootCRL), ("PCK", pckCRL)] where !crl.isCurrent(at: time) {
            throw VerificationFailure(check: .crl, reason: "the \(name) CRL is not current at \(time)")
        }
        if rootCRL.revokes(chain[1]) {
            throw VerificationFailure(check: .revocation, reason: "the PCK issuing CA is revoked")
        }
        if pckCRL.revokes(chain[0]) {
            throw VerificationFailure(check: .revocation, reason: "the PCK certificate is revoked")
        }
        return [rootCRL, pckCRL]
    }
}
