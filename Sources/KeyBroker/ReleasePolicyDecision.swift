/// The outcome of evaluating a ``ReleasePolicy`` against a token's claims: allowed, or refused with the first
/// condition that failed (for the audit log and the refusal message).
public enum ReleasePolicyDecision: Hashable, Sendable {
    /// The policy is satisfied: the key may be released.
    case allowed
    /// The policy is not satisfied; the failure names the first condition that failed.
    case refused(Failure)

    /// Whether the key may be released.
    public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }

    /// The failure, when refused.
    public var failure: Failure? {
        if case .refused(let failure) = self { return failure }
        return nil
    }

    /// The first condition that failed, or the reason no authority block applied.
    public struct Failure: Hashable, Sendable, CustomStringConvertible {
        /// The JSON path of the failed element in the policy (`anyOf[0].allOf[1]`); `$` when no authority block
        /// names the token's issuer.
        public let path: String
        /// The claim the failed condition tests, when it is a claim condition.
        public let claim: String?
        /// The operator of the failed condition, when it is a claim condition.
        public let `operator`: ReleasePolicy.Operator?
        /// Why it failed, for people. Holds no claim values (they may be secret-adjacent); only names.
        public let reason: String

        /// A failure at a policy element.
        ///
        /// - Parameters:
        ///   - path: The JSON path of the failed element.
        ///   - claim: The claim the condition tests, if any.
        ///   - operator: The condition's operator, if any.
        ///   - reason: Why it failed.
        public init(path: String, claim: String?, operator: ReleasePolicy.Operator?, reason: String) {
            self.path = path
            self.claim = claim
            self.operator = `operator`
            self.reason = reason
        }

        /// `path: reason`.
        public var description: String { "\(path): \(reason)" }
    }
}
