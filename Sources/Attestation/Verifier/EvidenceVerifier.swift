public import Foundation

/// The one way to verify evidence: its format's chain of trust to ``Anchors``, collateral from a
/// ``CollateralSource``, then a policy over the claims. The CLI's `enclave verify`, the attestation service and the
/// samples all verify through it, so a format is dispatched and a failure named in one place
/// (``AttestationError``).
///
/// ```swift
/// let verifier = EvidenceVerifier(anchors: .intelAndAMD, collateral: .fixed(bundle), policy: EvidencePolicy.failClosed)
/// let claims = try await verifier.verify(Evidence(detecting: bytes), at: Date())
/// ```
public struct EvidenceVerifier: Sendable {
    /// The roots evidence must chain to.
    public struct Anchors: Sendable {
        /// Intel DCAP roots (SGX, TDX), each marked simulated or not.
        public var intel: [DCAPQuote.TrustAnchor]
        /// AMD's ARKs.
        public var amdRoots: [AMDCertificate]
        /// Further AMD intermediates (ASK, ASVK) to try, besides those the evidence carries.
        public var amdIntermediates: [AMDCertificate]

        /// Roots for both vendors.
        ///
        /// - Parameters:
        ///   - intel: Intel DCAP roots, each marked simulated or not: claims of a quote chaining to a simulated root
        ///     say `simulated`, and the default policy refuses them.
        ///   - amdRoots: AMD root keys (ARKs); AMD's published ones by default.
        ///   - amdIntermediates: ASKs or ASVKs to try besides those the evidence carries. They add no trust: a chain
        ///     must still end at one of `amdRoots`.
        public init(
            intel: [DCAPQuote.TrustAnchor],
            amdRoots: [AMDCertificate] = AMDRoots.arks,
            amdIntermediates: [AMDCertificate] = []
        ) {
            self.intel = intel
            self.amdRoots = amdRoots
            self.amdIntermediates = amdIntermediates
        }

        /// Intel's SGX root (which also roots TDX) and AMD's ARKs.
        public static var intelAndAMD: Anchors {
            Anchors(intel: [.init(certificate: IntelRoots.sgxRootCA, simulated: false)])
        }
    }

    /// Where Intel collateral comes from for a quote, and whether a quote without it may be verified chain-only.
    public struct CollateralSource: Sendable {
        let lookup: @Sendable (DCAPQuote, Date) async throws(AttestationError) -> Collateral?
        /// Whether a quote without collateral is verified chain-only (``DCAPQuote/verifyChainOnly(anchors:at:)``:
        /// revocation and TCB not checked, the claims carry no TCB status) rather than refused.
        public var allowsChainOnly: Bool
        /// Called when a quote is verified chain-only for want of collateral, with the reason (for a log).
        public var onChainOnly: (@Sendable (AttestationError) -> Void)?

        /// Collateral from `lookup`: `nil` or an error with a ``AttestationError/Code/isCollateralMissing`` code
        /// means none for this quote.
        public init(
            allowsChainOnly: Bool = false,
            onChainOnly: (@Sendable (AttestationError) -> Void)? = nil,
            _ lookup: @escaping @Sendable (DCAPQuote, Date) async throws(AttestationError) -> Collateral?
        ) {
            self.lookup = lookup
            self.allowsChainOnly = allowsChainOnly
            self.onChainOnly = onChainOnly
        }

        /// The same collateral for every quote (`nil`: none).
        public static func fixed(_ collateral: Collateral?, allowsChainOnly: Bool = false) -> CollateralSource {
            CollateralSource(allowsChainOnly: allowsChainOnly) { _, _ in collateral }
        }

        /// No collateral: quotes are refused (``AttestationError/Code/collateralUnavailable``) unless
        /// `allowsChainOnly`.
        public static func none(allowsChainOnly: Bool = false) -> CollateralSource {
            fixed(nil, allowsChainOnly: allowsChainOnly)
        }
    }

    /// The result of ``outcome(_:at:)``: the verified claims (or the check that failed), and every policy failure.
    public struct Outcome: Sendable {
        /// The verified claims; `nil` when the evidence did not verify.
        public var claims: Claims?
        /// The check that failed, when the evidence did not verify.
        public var failure: AttestationError?
        /// Every requirement of the policy the claims miss (empty when they meet it, or did not verify).
        public var violations: [EvidencePolicy.Violation]

        /// Whether the evidence verified and met the policy.
        public var accepted: Bool { claims != nil && failure == nil && violations.isEmpty }

        /// The claims if accepted, otherwise the failure (``AttestationError/Code/policy`` listing every violation).
        /// - Throws: ``failure``, or ``AttestationError/Code/policy`` with every violation.
        public func get() throws(AttestationError) -> Claims {
            if let failure { throw failure }
            guard let claims else { throw AttestationError(.malformedEvidence, "no claims") }
            guard let first = violations.first else { return claims }
            throw AttestationError(
                .policy,
                ([first] + violations.dropFirst()).map(\.description).joined(separator: "; "),
                violations: violations
            )
        }
    }

    /// The roots evidence must chain to.
    public var anchors: Anchors
    /// Where Intel collateral comes from, and whether a quote without it is verified chain-only or refused.
    public var collateral: CollateralSource
    /// The policy applied to verified claims by ``verify(_:at:)`` and ``outcome(_:at:)`` (not by ``claims(_:at:)``).
    public var policy: any EvidencePolicyRule
    /// Caches the platform half of DCAP verification across quotes (the attestation service shares one).
    public var cache: VerificationCache?

    /// Create a verifier. The defaults are fail-closed: Intel's and AMD's real roots, no collateral (so SGX and TDX
    /// quotes are refused as ``AttestationError/Code/collateralUnavailable``), ``EvidencePolicy/failClosed``.
    ///
    /// - Parameters:
    ///   - anchors: The roots evidence must chain to.
    ///   - collateral: Where Intel collateral comes from.
    ///   - policy: The rules verified claims must meet.
    ///   - cache: A cache for the platform half of DCAP verification, shared between verifiers if given.
    public init(
        anchors: Anchors = .intelAndAMD,
        collateral: CollateralSource = .none(),
        policy: any EvidencePolicyRule = EvidencePolicy.failClosed,
        cache: VerificationCache? = nil
    ) {
        self.anchors = anchors
        self.collateral = collateral
        self.policy = policy
        self.cache = cache
    }

    /// Verify `evidence` at `time` and apply the policy: the claims, or the first failed check (a policy refusal,
    /// code ``AttestationError/Code/policy``, lists every requirement missed).
    /// - Throws: ``AttestationError`` naming the failed check; ``AttestationError/Code/policy`` lists every violation.
    public func verify(_ evidence: Evidence, at time: Date) async throws(AttestationError) -> Claims {
        try await outcome(evidence, at: time).get()
    }

    /// Verify `evidence` at `time` and evaluate every policy rule: the outcome with the claims and all failures.
    public func outcome(_ evidence: Evidence, at time: Date) async -> Outcome {
        do {
            let claims = try await claims(evidence, at: time)
            return Outcome(claims: claims, failure: nil, violations: policy.violations(claims))
        } catch {
            return Outcome(claims: nil, failure: error, violations: [])
        }
    }

    /// The claims of `evidence` if it verifies at `time`, before any policy.
    /// - Throws: ``AttestationError`` naming the failed check.
    public func claims(_ evidence: Evidence, at time: Date) async throws(AttestationError) -> Claims {
        do {
            switch evidence.format {
            case .sgx, .simulatedSGX, .tdx:
                let quote = try DCAPQuote(bytes: evidence.bytes)
                guard quote.isTDX == (evidence.format == .tdx) else {
                    throw AttestationError(
                        .wrongEvidenceType,
                        "the quote is \(quote.isTDX ? "a TDX" : "an SGX") quote, not \(evidence.format) evidence"
                    )
                }
                return try await verifyQuote(quote, at: time)
            case .sevSNP:
                let report = try SEVSNPReport(bytes: evidence.bytes)
                let (leaf, chain) = try evidence.amdCertificates()
                guard let leaf else {
                    throw AttestationError(.certificate, "the SEV-SNP evidence has no VCEK or VLEK")
                }
                return try report.verify(
                    signingCertificate: leaf,
                    chain: chain + anchors.amdIntermediates,
                    roots: anchors.amdRoots,
                    at: time
                )
            case .azureVTPM:
                let vtpm = try AzureVTPMEvidence(json: evidence.bytes)
                guard case .tdx(let quote) = vtpm.hardware else {
                    return try await vtpm.verify(at: time, amdChain: anchors.amdIntermediates)
                }
                return try await withCollateral(for: quote, at: time) { collateral in
                    if let collateral {
                        try await vtpm.verify(at: time, intelAnchors: anchors.intel, collateral: collateral)
                    } else {
                        try await vtpm.verify(at: time, intelAnchors: anchors.intel, tdxChainOnly: true)
                    }
                }
            default:
                throw AttestationError(.unsupportedFormat, "no verifier for \(evidence.format) evidence")
            }
        } catch {
            throw AttestationError(error)
        }
    }

    /// A DCAP quote: with its collateral, or chain-only where allowed.
    private func verifyQuote(_ quote: DCAPQuote, at time: Date) async throws -> Claims {
        try await withCollateral(for: quote, at: time) { collateral in
            if let collateral {
                try await quote.verify(anchors: anchors.intel, collateral: collateral, at: time, cache: cache)
            } else {
                try await quote.verifyChainOnly(anchors: anchors.intel, at: time)
            }
        }
    }

    /// Run `verify` with the quote's collateral. Without collateral, `verify(nil)` (chain-only) still runs first:
    /// evidence that fails even that is refused for its own failure; evidence that passes is refused for the missing
    /// collateral unless the source allows chain-only.
    private func withCollateral(
        for quote: DCAPQuote,
        at time: Date,
        _ verify: (Collateral?) async throws -> Claims
    ) async throws -> Claims {
        let missing: AttestationError
        do {
            if let found = try await collateral.lookup(quote, time) { return try await verify(found) }
            missing = AttestationError(
                .collateralUnavailable,
                "a real \(quote.isTDX ? "TDX" : "SGX") quote is verified with Intel's collateral (TCB info, QE "
                    + "identity, CRLs), and there is none for it"
            )
        } catch let error as AttestationError where error.code.isCollateralMissing {
            missing = error
        }
        let claims = try await verify(nil)
        guard collateral.allowsChainOnly else { throw missing }
        collateral.onChainOnly?(missing)
        return claims
    }
}
