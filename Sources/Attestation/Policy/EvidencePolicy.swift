/// What a relying party requires of cryptographically verified evidence, beyond its being genuine: the checks that
/// are choices rather than facts. Verification first establishes the claims; the policy then accepts or refuses
/// them with a named reason.
///
/// The default refuses simulated platforms, debug enclaves and TDs, TDs without `SEPT_VE_DISABLE`, TDs bound to a
/// service TD, and SEV-SNP guests whose policy allows a migration agent.
public struct EvidencePolicy: Hashable, Sendable {
    /// A refusal: the requirement and why the claims miss it.
    public struct Violation: Error, Hashable, Sendable, CustomStringConvertible {
        public var requirement: String
        public var reason: String
        public var description: String { "\(requirement): \(reason)" }
    }

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
    /// SEV-SNP: the highest (least privileged) VMPL a report may come from.
    public var maximumVMPL: UInt32 = 3
    /// SEV-SNP: the certified products accepted (`Milan-B0`, `Genoa-B1`, …); `nil` accepts any.
    public var sevSNPProducts: Set<String>?
    /// TCB statuses accepted; `nil` accepts any status (the status is still a claim).
    public var acceptedTCBStatuses: Set<TCBStatus>?

    public init() {}

    /// Refuse `claims` with the first requirement they miss.
    public func check(_ claims: Claims) throws(Violation) {
        if claims.simulated && !allowSimulated {
            throw Violation(requirement: "simulated", reason: "the evidence comes from a simulated platform")
        }
        if claims.debug && !allowDebug {
            throw Violation(requirement: "debug", reason: "the \(noun(claims)) runs in debug mode")
        }
        if let tdx = claims.tdx {
            if requireSEPTVEDisable && !tdx.septVEDisable {
                throw Violation(requirement: "SEPT_VE_DISABLE", reason: "the TD attribute SEPT_VE_DISABLE is not set")
            }
            if requireNoServiceTD, let service = tdx.mrServiceTD, service.contains(where: { $0 != 0 }) {
                throw Violation(requirement: "MRSERVICETD", reason: "the TD is bound to a service TD")
            }
        }
        if let snp = claims.sevSNP {
            if snp.policy.migrationAgentAllowed && !allowMigrationAgent {
                throw Violation(requirement: "migration agent", reason: "the guest policy allows a migration agent")
            }
            if snp.policy.smtAllowed && !allowSMT {
                throw Violation(requirement: "SMT", reason: "the guest policy allows SMT")
            }
            if let products = sevSNPProducts, !products.contains(snp.certifiedProduct ?? snp.productName) {
                throw Violation(
                    requirement: "product",
                    reason: "the VCEK certifies \(snp.certifiedProduct ?? snp.productName), not one of "
                        + products.sorted().joined(separator: ", ")
                )
            }
            if snp.vmpl > maximumVMPL {
                throw Violation(
                    requirement: "VMPL",
                    reason: "the report comes from VMPL \(snp.vmpl), at most \(maximumVMPL) is accepted"
                )
            }
        }
        if let accepted = acceptedTCBStatuses {
            guard let status = claims.tcbStatus, accepted.contains(status) else {
                throw Violation(
                    requirement: "TCB status",
                    reason: "the TCB status \(claims.tcbStatus?.rawValue ?? "(not evaluated)") is not accepted"
                )
            }
        }
    }

    private func noun(_ claims: Claims) -> String {
        claims.tdx != nil ? "TD" : claims.sevSNP != nil ? "guest" : "enclave"
    }
}
