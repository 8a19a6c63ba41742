/// One requirement on verified claims, in the shape of swift-certificates' `VerifierPolicy`: it evaluates claims to a
/// result. Rules compose with ``EvidencePolicyRules`` (a result builder), whose evaluation lists every failure.
public protocol EvidencePolicyRule: Sendable {
    /// Whether `claims` meet this requirement.
    func evaluate(_ claims: Claims) -> EvidencePolicyResult
    /// Every requirement `claims` miss; a single rule's failure by default.
    func violations(_ claims: Claims) -> [EvidencePolicy.Violation]
}

extension EvidencePolicyRule {
    public func violations(_ claims: Claims) -> [EvidencePolicy.Violation] {
        if case .failsToMeetPolicy(let violation) = evaluate(claims) { return [violation] }
        return []
    }
}
