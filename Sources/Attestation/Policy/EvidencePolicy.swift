/// What a relying party requires of cryptographically verified evidence, beyond its being genuine: the checks that
/// are choices rather than facts. Verification first establishes the claims; the policy then accepts or refuses
/// them with a named reason.
///
/// The defaults (``init()``, also spelled ``failClosed``) refuse what is known bad or not established, each until
/// the caller says otherwise:
///
/// | Refused by default | Setting that accepts it |
/// | --- | --- |
/// | simulated platforms | ``allowSimulated`` |
/// | debug enclaves, TDs and guests | ``allowDebug`` |
/// | TDs without `SEPT_VE_DISABLE` | ``requireSEPTVEDisable`` |
/// | TDs bound to a service TD | ``requireNoServiceTD`` |
/// | SEV-SNP guests whose policy allows a migration agent | ``allowMigrationAgent`` |
/// | SEV-SNP reports from a VMPL above 0 | ``maximumVMPL`` |
/// | SGX and TDX evidence without a TCB status (verified without collateral) | ``allowMissingTCBStatus`` |
/// | out-of-date TCB (`OutOfDate`, `OutOfDateConfigurationNeeded`, `TDRelaunchAdvised…`) | ``allowOutOfDate`` |
/// | a `Revoked` TCB | nothing |
///
/// Accepted by default: the current TCB statuses (``currentTCBStatuses``: `UpToDate`, `SWHardeningNeeded`,
/// `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded` — the platform is patched; what remains is the
/// enclave author's or operator's configuration, as Intel's verifier reports it) and SEV-SNP guests allowing SMT.
public struct EvidencePolicy: Hashable, Sendable, EvidencePolicyRule {
    /// A refusal: the requirement, why the claims miss it, and the setting that would accept them.
    public struct Violation: Error, Hashable, Sendable, CustomStringConvertible {
        /// The requirement's name: `simulated`, `debug`, `SEPT_VE_DISABLE`, `MRSERVICETD`, `migration agent`,
        /// `SMT`, `product`, `VMPL` or `TCB status`.
        public var requirement: String
        /// Why the claims miss the requirement, for people (it names claim values, never secrets).
        public var reason: String
        /// The ``EvidencePolicy`` property that would accept the evidence (`allowDebug`, `allowOutOfDate`,
        /// `maximumVMPL`, …), or `nil` when no setting does (a revoked TCB).
        public var setting: String?
        public var description: String { "\(requirement): \(reason)" }

        /// A refusal of `requirement` because of `reason`; `setting` names what would accept the evidence, if
        /// anything does. Custom ``EvidencePolicyRule``s and ``EvidenceRequirement``s outside this module refuse
        /// claims with it.
        public init(requirement: String, reason: String, setting: String? = nil) {
            self.requirement = requirement
            self.reason = reason
            self.setting = setting
        }
    }

    /// The defaults: ``init()``. Services and tools start from this value and relax it only on an operator's word.
    public static let failClosed = EvidencePolicy()

    /// TCB statuses of a platform that is up to date with Intel's patches.
    public static let currentTCBStatuses: Set<TCBStatus> = [
        .upToDate, .swHardeningNeeded, .configurationNeeded, .configurationAndSWHardeningNeeded,
    ]
    /// TCB statuses of a platform (or, for `TDRelaunchAdvised…`, a TD launched on a TDX module) missing patches.
    public static let outOfDateTCBStatuses: Set<TCBStatus> = [
        .outOfDate, .outOfDateConfigurationNeeded, .tdRelaunchAdvised, .tdRelaunchAdvisedConfigurationNeeded,
    ]

    /// Accept evidence that chains to a simulation root.
    public var allowSimulated = false
    /// Accept debug SGX enclaves, debug TDs and SEV-SNP guests whose policy allows debugging.
    public var allowDebug = false
    /// TDX: require TD attribute `SEPT_VE_DISABLE` (bit 28), as Intel's verifier does.
    public var requireSEPTVEDisable = true
    /// TDX 1.5: require `MRSERVICETD` to be zero (no service TD bound).
    public var requireNoServiceTD = true
    /// SEV-SNP: accept guests whose policy allows a migration agent.
    public var allowMigrationAgent = false
    /// SEV-SNP: accept guests whose policy allows SMT.
    public var allowSMT = true
    /// SEV-SNP: the highest (least privileged) VMPL a report may come from; 0 by default (the guest's most privileged
    /// level, where its kernel or paravisor runs; a report from a higher VMPL speaks for less of the guest).
    public var maximumVMPL: UInt32 = 0
    /// SEV-SNP: the certified products accepted (`Milan-B0`, `Genoa-B1`, …); `nil` accepts any.
    public var sevSNPProducts: Set<String>?
    /// TCB statuses accepted, when the claims carry one; ``currentTCBStatuses`` by default. `Revoked` is refused
    /// even when listed.
    public var acceptedTCBStatuses: Set<TCBStatus> = Self.currentTCBStatuses
    /// SGX and TDX: accept claims without a TCB status (a chain-only verification, see
    /// ``DCAPQuote/verifyChainOnly(anchors:at:)``). SEV-SNP claims never carry one and are not affected.
    public var allowMissingTCBStatus = false

    /// Accept out-of-date TCB statuses (``outOfDateTCBStatuses``) besides the accepted ones.
    public var allowOutOfDate: Bool {
        get { acceptedTCBStatuses.isSuperset(of: Self.outOfDateTCBStatuses) }
        set {
            if newValue {
                acceptedTCBStatuses.formUnion(Self.outOfDateTCBStatuses)
            } else {
                acceptedTCBStatuses.subtract(Self.outOfDateTCBStatuses)
            }
        }
    }

    /// The defaults (``failClosed``).
    public init() {}

    /// Refuse `claims` with the first requirement they miss (``violations(_:)`` lists them all).
    /// - Throws: The first ``Violation``.
    public func check(_ claims: Claims) throws(Violation) {
        if let first = violations(claims).first { throw first }
    }

    /// The first requirement `claims` miss, or ``EvidencePolicyResult/meetsPolicy``.
    public func evaluate(_ claims: Claims) -> EvidencePolicyResult {
        violations(claims).first.map { .failsToMeetPolicy($0) } ?? .meetsPolicy
    }

    /// Every requirement `claims` miss, in the order of ``rules``.
    public func violations(_ claims: Claims) -> [Violation] { rules.violations(claims) }

    /// The settings as rules, one per requirement: simulation, debug, TDX attributes, SEV-SNP guest policy, product
    /// and VMPL, TCB status. Compose them with more (``EvidencePolicyRules``) for a relying party's own checks.
    public var rules: EvidencePolicyRules {
        let policy = self
        return EvidencePolicyRules {
            EvidenceRequirement("simulated") { claims in
                guard claims.simulated && !policy.allowSimulated else { return nil }
                return Violation(
                    requirement: "simulated",
                    reason: "the evidence comes from a simulated platform",
                    setting: "allowSimulated"
                )
            }
            EvidenceRequirement("debug") { claims in
                guard claims.debug && !policy.allowDebug else { return nil }
                return Violation(
                    requirement: "debug",
                    reason: "the \(policy.noun(claims)) runs in debug mode",
                    setting: "allowDebug"
                )
            }
            EvidenceRequirement("SEPT_VE_DISABLE") { claims in
                guard let tdx = claims.tdx, policy.requireSEPTVEDisable && !tdx.septVEDisable else { return nil }
                return Violation(
                    requirement: "SEPT_VE_DISABLE",
                    reason: "the TD attribute SEPT_VE_DISABLE is not set",
                    setting: "requireSEPTVEDisable"
                )
            }
            EvidenceRequirement("MRSERVICETD") { claims in
                guard policy.requireNoServiceTD, let service = claims.tdx?.mrServiceTD,
                    service.contains(where: { $0 != 0 })
                else { return nil }
                return Violation(
                    requirement: "MRSERVICETD",
                    reason: "the TD is bound to a service TD",
                    setting: "requireNoServiceTD"
                )
            }
            EvidenceRequirement("migration agent") { claims in
                guard let snp = claims.sevSNP, snp.policy.migrationAgentAllowed && !policy.allowMigrationAgent else {
                    return nil
                }
                return Violation(
                    requirement: "migration agent",
                    reason: "the guest policy allows a migration agent",
                    setting: "allowMigrationAgent"
                )
            }
            EvidenceRequirement("SMT") { claims in
                guard let snp = claims.sevSNP, snp.policy.smtAllowed && !policy.allowSMT else { return nil }
                return Violation(requirement: "SMT", reason: "the guest policy allows SMT", setting: "allowSMT")
            }
            EvidenceRequirement("product") { claims in
                guard let snp = claims.sevSNP, let products = policy.sevSNPProducts,
                    !products.contains(snp.certifiedProduct ?? snp.productName)
                else { return nil }
                return Violation(
                    requirement: "product",
                    reason: "the VCEK certifies \(snp.certifiedProduct ?? snp.productName), not one of "
                        + products.sorted().joined(separator: ", "),
                    setting: "sevSNPProducts"
                )
            }
            EvidenceRequirement("VMPL") { claims in
                guard let snp = claims.sevSNP, snp.vmpl > policy.maximumVMPL else { return nil }
                return Violation(
                    requirement: "VMPL",
                    reason: "the report comes from VMPL \(snp.vmpl), at most \(policy.maximumVMPL) is accepted",
                    setting: "maximumVMPL"
                )
            }
            EvidenceRequirement("TCB status") { claims in policy.tcbStatusViolation(claims) }
        }
    }

    private func tcbStatusViolation(_ claims: Claims) -> Violation? {
        guard let status = claims.tcbStatus else {
            // SGX and TDX have TCB collateral; without it, nothing says the platform is patched or not revoked.
            guard (claims.sgx != nil || claims.tdx != nil) && !allowMissingTCBStatus else { return nil }
            return Violation(
                requirement: "TCB status",
                reason: "no TCB status: the evidence was verified without collateral (revocation and TCB not checked)",
                setting: "allowMissingTCBStatus"
            )
        }
        if status == .revoked {
            return Violation(requirement: "TCB status", reason: "the platform's TCB is revoked", setting: nil)
        }
        guard acceptedTCBStatuses.contains(status) else {
            return Violation(
                requirement: "TCB status",
                reason: "the TCB status \(status.rawValue) is not accepted",
                setting: Self.outOfDateTCBStatuses.contains(status) ? "allowOutOfDate" : "acceptedTCBStatuses"
            )
        }
        return nil
    }

    private func noun(_ claims: Claims) -> String {
        claims.tdx != nil ? "TD" : claims.sevSNP != nil ? "guest" : "enclave"
    }
}
