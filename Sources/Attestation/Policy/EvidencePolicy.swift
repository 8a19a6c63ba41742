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
public struct EvidencePolicy: Hashable, Sendable {
    /// A refusal: the requirement, why the claims miss it, and the setting that would accept them.
    public struct Violation: Error, Hashable, Sendable, CustomStringConvertible {
        /// The requirement's name: `simulated`, `debug`, `SEPT_VE_DISABLE`, `MRSERVICETD`, `migration agent`,
        /// `SMT`, `product`, `VMPL` or `TCB status`.
        public var requirement: String
        public var reason: String
        /// The ``EvidencePolicy`` property that would accept the evidence (`allowDebug`, `allowOutOfDate`,
        /// `maximumVMPL`, …), or `nil` when no setting does (a revoked TCB).
        public var setting: String?
        public var description: String { "\(requirement): \(reason)" }
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

    /// Refuse `claims` with the first requirement they miss.
    public func check(_ claims: Claims) throws(Violation) {
        if claims.simulated && !allowSimulated {
            throw Violation(
                requirement: "simulated",
                reason: "the evidence comes from a simulated platform",
                setting: "allowSimulated"
            )
        }
        if claims.debug && !allowDebug {
            throw Violation(
                requirement: "debug",
                reason: "the \(noun(claims)) runs in debug mode",
                setting: "allowDebug"
            )
        }
        if let tdx = claims.tdx {
            if requireSEPTVEDisable && !tdx.septVEDisable {
                throw Violation(
                    requirement: "SEPT_VE_DISABLE",
                    reason: "the TD attribute SEPT_VE_DISABLE is not set",
                    setting: "requireSEPTVEDisable"
                )
            }
            if requireNoServiceTD, let service = tdx.mrServiceTD, service.contains(where: { $0 != 0 }) {
                throw Violation(
                    requirement: "MRSERVICETD",
                    reason: "the TD is bound to a service TD",
                    setting: "requireNoServiceTD"
                )
            }
        }
        if let snp = claims.sevSNP {
            if snp.policy.migrationAgentAllowed && !allowMigrationAgent {
                throw Violation(
                    requirement: "migration agent",
                    reason: "the guest policy allows a migration agent",
                    setting: "allowMigrationAgent"
                )
            }
            if snp.policy.smtAllowed && !allowSMT {
                throw Violation(requirement: "SMT", reason: "the guest policy allows SMT", setting: "allowSMT")
            }
            if let products = sevSNPProducts, !products.contains(snp.certifiedProduct ?? snp.productName) {
                throw Violation(
                    requirement: "product",
                    reason: "the VCEK certifies \(snp.certifiedProduct ?? snp.productName), not one of "
                        + products.sorted().joined(separator: ", "),
                    setting: "sevSNPProducts"
                )
            }
            if snp.vmpl > maximumVMPL {
                throw Violation(
                    requirement: "VMPL",
                    reason: "the report comes from VMPL \(snp.vmpl), at most \(maximumVMPL) is accepted",
                    setting: "maximumVMPL"
                )
            }
        }
        try checkTCBStatus(claims)
    }

    private func checkTCBStatus(_ claims: Claims) throws(Violation) {
        guard let status = claims.tcbStatus else {
            // SGX and TDX have TCB collateral; without it, nothing says the platform is patched or not revoked.
            if (claims.sgx != nil || claims.tdx != nil) && !allowMissingTCBStatus {
                throw Violation(
                    requirement: "TCB status",
                    reason:
                        "no TCB status: the evidence was verified without collateral (revocation and TCB not checked)",
                    setting: "allowMissingTCBStatus"
                )
            }
            return
        }
        if status == .revoked {
            throw Violation(requirement: "TCB status", reason: "the platform's TCB is revoked", setting: nil)
        }
        guard acceptedTCBStatuses.contains(status) else {
            throw Violation(
                requirement: "TCB status",
                reason: "the TCB status \(status.rawValue) is not accepted",
                setting: Self.outOfDateTCBStatuses.contains(status) ? "allowOutOfDate" : "acceptedTCBStatuses"
            )
        }
    }

    private func noun(_ claims: Claims) -> String {
        claims.tdx != nil ? "TD" : claims.sevSNP != nil ? "guest" : "enclave"
    }
}
