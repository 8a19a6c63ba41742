internal import Crypto
internal import EnclaveCore
public import Foundation
internal import SwiftASN1
@_spi(FixedExpiryValidationTime) internal import X509

extension DCAPQuote {
    /// Verify the quote completely: collateral signatures and validity at `time`, the quote's signature chain to
    /// one of `anchors`, the quoting enclave against the QE identity, and the platform's TCB against the TCB info.
    /// Returns claims with the TCB status (the QE's status folded in) and the advisory IDs.
    ///
    /// The root CA CRL must be signed by the anchor and the PCK CRL by the PCK chain's intermediate CA, both
    /// current at `time`; neither the intermediate nor the PCK certificate may be listed.
    /// - Throws: ``VerificationFailure`` (an ``AttestationError``) naming the failed check; `EnclaveError` when signed
    ///   collateral does not parse.
    public func verify(
        anchors: [TrustAnchor],
        collateral: Collateral,
        at time: Date,
        cache: VerificationCache? = nil
    ) async throws -> Claims {
        let roots = anchors.map(\.certificate)
        let key = cache.map { _ in VerificationCache.key(self, collateral) }
        let platformWork: VerificationCache.Entry
        // The QE report (signed by the PCK key, binding the attestation key) is the platform's and is checked with
        // it; what is left per quote is the quote's own signature.
        if let key, let cached = cache?.entry(key, collateral: collateral, roots: roots, at: time) {
            platformWork = cached
            try checkQuoteSignature()
        } else {
            // In order, on the caller's thread: measured on a loaded two-core machine, handing the quote's signature
            // and chain to another core (two child tasks) cost more in wake-ups than the checks it moved.
            platformWork = try await verifyPlatform(roots: roots, collateral: collateral, at: time)
            if let key { cache?.store(platformWork, for: key) }
            try checkQuoteSignature()
        }
        let tcbInfo = platformWork.tcbInfo
        let path = platformWork.path
        var claims = claims(anchoredAt: path, anchors: anchors)
        let qeLevel = try checkQuotingEnclave(platformWork.qeIdentity)
        let platform = platformWork.platform
        guard platform.fmspc == tcbInfo.fmspc, platform.pceID == tcbInfo.pceID else {
            throw VerificationFailure(
                check: .tcbLevel,
                reason: "the TCB info is for another platform (FMSPC or PCE ID)"
            )
        }
        let evaluation = try evaluateTCB(tcbInfo, platform: platform, qeLevel: qeLevel)
        claims.tcbStatus = evaluation.status
        claims.advisoryIDs = evaluation.advisoryIDs
        return claims
    }

    /// Everything that depends only on the platform and its collateral: CRLs, collateral signatures and windows,
    /// the PCK path. Returns what the per-quote checks need and the window in which it holds.
    func verifyPlatform(
        roots: [Certificate],
        collateral: Collateral,
        at time: Date
    ) async throws
        -> VerificationCache.Entry
    {
        // The PCK CA and the root are usually the collateral's own (the PCK CRL's issuer chain): compared by bytes.
        var known = collateral.knownCertificates
        let chain = try pckChain(reusing: &known)
        let crls = try checkRevocation(collateral: collateral, chain: chain, roots: roots, at: time)
        // Signatures first: nothing unauthenticated is interpreted.
        try await Self.checkSigned(
            collateral.tcbInfoBytes,
            signature: collateral.tcbInfoSignature,
            chain: collateral.tcbInfoIssuerChain,
            roots: roots,
            rootCRL: crls[0],
            at: time,
            check: .tcbInfoSignature
        )
        try await Self.checkSigned(
            collateral.qeIdentityBytes,
            signature: collateral.qeIdentitySignature,
            chain: collateral.qeIdentityIssuerChain,
            roots: roots,
            rootCRL: crls[0],
            at: time,
            check: .qeIdentitySignature,
            // Intel signs both with the TCB signing key: the same chain, validated at the same time, once.
            chainValidated: collateral.qeIdentityIssuerChain == collateral.tcbInfoIssuerChain
        )
        // Parsed once per collateral object and bytes, after their signatures verified.
        let tcbInfo = try collateral.parsed.tcbInfo(collateral.tcbInfoBytes)
        let qeIdentity = try collateral.parsed.qeIdentity(collateral.qeIdentityBytes)
        for (name, issue, next) in [
            ("TCB info", tcbInfo.issueDate, tcbInfo.nextUpdate),
            ("QE identity", qeIdentity.issueDate, qeIdentity.nextUpdate),
        ] {
            guard time >= issue else {
                throw VerificationFailure(check: .collateralValidity, reason: "\(name) is not valid until \(issue)")
            }
            guard time < next else {
                throw VerificationFailure(check: .collateralValidity, reason: "\(name) expired at \(next)")
            }
        }
        // The quote's own chain (PCK path, QE report, SGX extension), after the collateral that vouches for it.
        let path = try await validatePCKPath(chain: chain, trustAnchors: roots, at: time)
        try checkQEReport(pckLeaf: path[0])
        guard let value = path[0].extensions.first(where: { $0.oid == SGXExtensions.oid })?.value else {
            throw VerificationFailure(check: .tcbLevel, reason: "the PCK certificate has no SGX extension")
        }
        let platform = try SGXExtensions(derEncoded: value)
        let certificates = path + collateral.tcbInfoIssuerChain + collateral.qeIdentityIssuerChain
        var from = ([tcbInfo.issueDate, qeIdentity.issueDate] + certificates.map(\.notValidBefore)).max() ?? time
        var until = ([tcbInfo.nextUpdate, qeIdentity.nextUpdate] + certificates.map(\.notValidAfter)).min() ?? time
        for crl in crls {
            from = max(from, crl.thisUpdate)
            if let next = crl.nextUpdate { until = min(until, next) }
        }
        return VerificationCache.Entry(
            path: path,
            platform: platform,
            tcbInfo: tcbInfo,
            qeIdentity: qeIdentity,
            validFrom: from,
            validUntil: until,
            issuerChains: [
                collateral.tcbInfoIssuerChain, collateral.qeIdentityIssuerChain, collateral.pckCRLIssuerChain,
            ]
        )
    }
}
