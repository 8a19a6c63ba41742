/// Rules evaluated together: every rule runs, every failure is listed, in order.
public struct EvidencePolicyRules: EvidencePolicyRule {
    /// The rules, in evaluation (and reporting) order.
    public var rules: [any EvidencePolicyRule]

    /// Rules listed in a result builder: rules, `if`, `if`/`else` and `for`.
    ///
    /// ```swift
    /// let policy = EvidencePolicyRules {
    ///     EvidencePolicy.failClosed
    ///     if let signer {
    ///         EvidenceRequirement("MRSIGNER") {
    ///             $0.sgx?.mrSigner == signer ? nil : .init(requirement: "MRSIGNER", reason: "another signer")
    ///         }
    ///     }
    /// }
    /// ```
    public init(@EvidencePolicyBuilder _ rules: () -> [any EvidencePolicyRule]) {
        self.rules = rules()
    }

    /// Rules from an array, evaluated in its order.
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
