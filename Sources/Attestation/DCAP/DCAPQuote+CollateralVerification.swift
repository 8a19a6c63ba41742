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
        if let key, let cached = cache?.entry(key, collateral: collateral, roots: roots, at: time) {
            platformWork = cached
        } else {
            platformWork = try await verifyPlatform(roots: roots, collateral: collateral, at: time)
            if let key { cache?.store(platformWork, for: key) }
        }
        let tcbInfo = platformWork.tcbInfo
        let path = platformWork.path
        // The QE report (signed by the PCK key, binding the attestation key) is the platform's and was checked with
        // it; what is left per quote is the quote's own signature.
        try checkQuoteSignature()
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

    /// The quoting enclave against Intel's identity for it (`QE` for SGX, `TD_QE` for TDX): signer, product,
    /// MISCSELECT and attributes under their masks, and the level its SVN reaches.
    func checkQuotingEnclave(_ identity: QEIdentity) throws -> QEIdentity.Level {
        let expectedID = isTDX ? "TD_QE" : "QE"
        guard identity.id == expectedID else {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the QE identity is for \(identity.id), this quote needs \(expectedID)"
            )
        }
        // Intel's quoting enclave, whoever signed the identity: a QE identity naming another is not Intel's.
        let intel = QuotingEnclaveIdentity.intel(tdx: isTDX)
        guard identity.mrSigner == intel.mrSigner, identity.isvProductID == Int(intel.isvProductID) else {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the QE identity does not name Intel's quoting enclave (\(intel.id))"
            )
        }
        try checkPinnedQuotingEnclave()
        let qe = qeReport
        guard qe.mrSigner.bytes == identity.mrSigner, Int(qe.isvProductID) == identity.isvProductID else {
            throw VerificationFailure(check: .qeIdentity, reason: "the quoting enclave is not the one Intel identifies")
        }
        let misc = withUnsafeBytes(of: qe.miscSelect.littleEndian, Array.init)
        guard zip(misc, identity.miscSelectMask).map({ $0 & $1 }) == identity.miscSelect,
            zip(qe.attributes, identity.attributesMask).map({ $0 & $1 }) == identity.attributes
        else {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the quoting enclave's MISCSELECT or attributes differ"
            )
        }
        guard let level = identity.levels.first(where: { Int(qe.isvSVN) >= $0.isvSVN }) else {
            throw VerificationFailure(check: .qeIdentity, reason: "the quoting enclave's SVN is below every level")
        }
        return level
    }

    /// The quoting enclave pinned to Intel's (``QuotingEnclaveIdentity/intel(tdx:)``), with or without collateral.
    func checkPinnedQuotingEnclave() throws {
        let intel = QuotingEnclaveIdentity.intel(tdx: isTDX)
        if let mismatch = intel.mismatch(qeReport) {
            throw VerificationFailure(
                check: .qeIdentity,
                reason: "the quoting enclave is not Intel's \(intel.id): \(mismatch)"
            )
        }
    }

    /// The TCB status as Intel specifies it: the platform's level (SGX components and PCESVN; for TDX also the TEE
    /// TCB SVN), the TDX module's level, the quoting enclave's, and for TDX 1.5 the relaunch advice.
    func evaluateTCB(
        _ tcbInfo: TCBInfo,
        platform: SGXExtensions,
        qeLevel: QEIdentity.Level
    ) throws -> (status: TCBStatus, advisoryIDs: [String]) {
        var advisories: [String] = []
        func add(_ ids: [String]) { for id in ids where !advisories.contains(id) { advisories.append(id) } }
        guard let td = tdReport else {
            guard tcbInfo.id == "SGX" else {
                throw VerificationFailure(check: .tcbLevel, reason: "the TCB info is for \(tcbInfo.id), not SGX")
            }
            guard let level = tcbInfo.matchingLevel(components: platform.tcbComponents, pceSVN: platform.pceSVN)
            else {
                throw VerificationFailure(check: .tcbLevel, reason: "no matching TCB level")
            }
            add(level.advisoryIDs)
            add(qeLevel.advisoryIDs)
            return (level.status.converged(with: [qeLevel.status]), advisories)
        }
        guard tcbInfo.id == "TDX" else {
            throw VerificationFailure(check: .tcbLevel, reason: "the TCB info is for \(tcbInfo.id), not TDX")
        }
        func status(teeTCBSVN: [UInt8]) throws -> (TCBStatus, [String], [String]) {
            guard
                let level = tcbInfo.matchingTDXLevel(
                    components: platform.tcbComponents,
                    pceSVN: platform.pceSVN,
                    teeTCBSVN: teeTCBSVN
                )
            else {
                throw VerificationFailure(check: .tcbLevel, reason: "no matching TCB level")
            }
            let module = try tdxModuleLevel(tcbInfo, td: td, teeTCBSVN: teeTCBSVN)
            let components = module.map { [$0.status] } ?? []
            return (level.status.converged(with: components), level.advisoryIDs, module?.advisoryIDs ?? [])
        }
        let (launch, platformIDs, moduleIDs) = try status(teeTCBSVN: td.teeTCBSVN)
        add(platformIDs)
        add(qeLevel.advisoryIDs)
        add(moduleIDs)
        var result = launch
        if let current = td.teeTCBSVN2, current.contains(where: { $0 != 0 }), current != td.teeTCBSVN,
            let (now, _, _) = try? status(teeTCBSVN: current)
        {
            result = TCBStatus.relaunchStatus(launch: launch, current: now)
        }
        // The quoting enclave folds in last, as in Intel's verifier (relaunch advice stands).
        return (result.converged(with: [qeLevel.status]), advisories)
    }

    /// The TDX module: its signer and attributes against the module identity for its major version
    /// (`teeTCBSVN[1]`; the `tdxModule` entry for version 0), and the level its minor SVN reaches (`nil` for
    /// version 0, which has no levels of its own).
    func tdxModuleLevel(_ tcbInfo: TCBInfo, td: TDReport, teeTCBSVN: [UInt8]) throws -> QEIdentity.Level? {
        let major = teeTCBSVN[1]
        let identity: TCBInfo.TDXModuleIdentity
        if major == 0 {
            guard let module = tcbInfo.tdxModule else {
                throw VerificationFailure(check: .tdxModule, reason: "the TCB info has no TDX module identity")
            }
            identity = module
        } else {
            let id = "TDX_" + Hex.encode([major]).uppercased()
            guard let module = tcbInfo.tdxModuleIdentities.first(where: { $0.id == id }) else {
                throw VerificationFailure(check: .tdxModule, reason: "the TCB info has no identity \(id)")
            }
            identity = module
        }
        guard td.mrSignerSeam == identity.mrSigner,
            zip(td.seamAttributes, identity.attributesMask).map({ $0 & $1 }) == identity.attributes
        else {
            throw VerificationFailure(
                check: .tdxModule,
                reason: "the TDX module's signer or attributes differ from its identity"
            )
        }
        guard major > 0 else { return nil }
        guard let level = identity.levels.first(where: { Int(teeTCBSVN[0]) >= $0.isvSVN }) else {
            throw VerificationFailure(check: .tdxModule, reason: "the TDX module's SVN is below every level")
        }
        return level
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
        let chain = try pckChain()
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
        let tcbInfo = try TCBInfo(jsonBytes: collateral.tcbInfoBytes)
        let qeIdentity = try QEIdentity(jsonBytes: collateral.qeIdentityBytes)
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
            rootCRL = try CertificateRevocationList(bytes: collateral.rootCACRL)
            pckCRL = try CertificateRevocationList(bytes: collateral.pckCRL)
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

    /// The common name of Intel's TCB Signing certificate, which signs TCB info and QE identities.
    static let tcbSigningCommonName = "Intel SGX TCB Signing"

    /// Check that `bytes` carry `signature` (raw r‖s, P-256) by the leaf of `chain`, and that the leaf is Intel's
    /// TCB Signing certificate: issued directly by one of `roots`, named `CN=Intel SGX TCB Signing`, an end entity
    /// whose key usage is digital signature, and not listed on `rootCRL`. Any other certificate under the root (a
    /// PCK certificate, say) does not speak for Intel's TCB.
    static func checkSigned(
        _ bytes: [UInt8],
        signature: [UInt8],
        chain: [Certificate],
        roots: [Certificate],
        rootCRL: CertificateRevocationList,
        at time: Date,
        check: Check,
        chainValidated: Bool = false
    ) async throws {
        guard let leaf = chain.first else { throw VerificationFailure(check: check, reason: "no issuer chain") }
        if !chainValidated {
            guard let path = await validatedPath(chain, roots: roots, at: time) else {
                throw VerificationFailure(
                    check: check,
                    reason: "the signing certificate does not chain to a trust anchor at \(time)"
                )
            }
            SignatureCounter.record(chain.count - 1)  // the issuer chain's path
            try checkTCBSigningRole(path: path, rootCRL: rootCRL, check: check)
        }
        SignatureCounter.record(1)
        guard let key = P256.Signing.PublicKey(leaf.publicKey),
            let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            key.isValidSignature(parsed, for: bytes)
        else {
            throw VerificationFailure(check: check, reason: "the signature over the exact bytes does not verify")
        }
    }

    /// The role of Intel's TCB Signing certificate (see ``checkSigned(_:signature:chain:roots:rootCRL:at:check:chainValidated:)``),
    /// on its validated path (leaf first, anchor last).
    static func checkTCBSigningRole(path: [Certificate], rootCRL: CertificateRevocationList, check: Check) throws {
        let leaf = path[0]
        guard path.count == 2 else {
            throw VerificationFailure(
                check: check,
                reason:
                    "the signing certificate is not issued directly by the root CA (Intel's TCB Signing certificate is)"
            )
        }
        let names = leaf.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        guard names.count == 1, names.first.flatMap({ String($0.value) }) == tcbSigningCommonName else {
            throw VerificationFailure(
                check: check,
                reason: "the signing certificate is not Intel's TCB Signing certificate (CN=\(tcbSigningCommonName))"
            )
        }
        // Intel's: key usage digital signature and non-repudiation (critical), basic constraints CA:FALSE (critical).
        guard let usage = try? leaf.extensions.keyUsage, usage.digitalSignature, !usage.keyCertSign, !usage.cRLSign,
            (try? leaf.extensions.basicConstraints) == .notCertificateAuthority
        else {
            throw VerificationFailure(
                check: check,
                reason:
                    "the signing certificate's key usage or basic constraints are not those of a TCB Signing certificate"
            )
        }
        guard rootCRL.issuer == path[1].subject else {
            throw VerificationFailure(check: .crl, reason: "the root CA CRL is not the signing certificate's issuer's")
        }
        if rootCRL.revokes(leaf) {
            throw VerificationFailure(check: .revocation, reason: "the TCB Signing certificate is revoked")
        }
    }
}
