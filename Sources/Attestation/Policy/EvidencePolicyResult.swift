/// The result of one rule: met, or refused with the requirement, the reason and the setting that would accept it.
public enum EvidencePolicyResult: Hashable, Sendable {
    case meetsPolicy
    case failsToMeetPolicy(EvidencePolicy.Violation)
}
