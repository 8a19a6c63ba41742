/// The result of one rule: met, or refused with the requirement, the reason and the setting that would accept it.
public enum EvidencePolicyResult: Hashable, Sendable {
    /// The claims meet the rule.
    case meetsPolicy
    /// The claims miss the rule: the requirement, why, and the setting that would accept them.
    case failsToMeetPolicy(EvidencePolicy.Violation)
}
