/// Rules evaluated together: every rule runs, every failure is listed, in order.
public struct EvidencePolicyRules: EvidencePolicyRule {
    public var rules: [any EvidencePolicyRule]

    public init(@EvidencePolicyBuilder _ rules: () -> [any EvidencePolicyRule]) {
        self.rules = rules()
    }

    public init(_ rules: [any EvidencePolicyRule]) {
        self.rules = rules
    }

    /// Every requirement `claims` miss (empty when they meet them all).
    public func violations(_ claims: Claims) -> [EvidencePolicy.Violation] {
        rules.flatMap { $0.violations(claims) }
    }

    /// The first failure, if any (``violations(_:)`` lists them all).
    public func evaluate(_ claims: Claims) -> EvidencePolicyResult {
        violations(claims).first.map { .failsToMeetPolicy($0) } ?? .meetsPolicy
    }
}
