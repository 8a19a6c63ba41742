extension AttestationPolicy {
    /// What evaluating a policy decided.
    public struct Decision: Sendable {
        /// Authorization passed: some rule permitted and none denied.
        public var permitted: Bool
        /// Why not, when not.
        public var reason: String?
        /// Claims the issuance rules put into the token, in order.
        public var issued: [PolicyClaim]
        /// Evaluation stopped at ``AttestationPolicy/maxEvaluationSteps`` (or its task was cancelled, or its time
        /// was up): the policy is refused, whatever its rules would have said.
        public var limitExceeded = false
        /// The steps the evaluation took (see ``AttestationPolicy/maxEvaluationSteps``).
        public var steps = 0
    }

    /// The most claims a policy's `add()` rules may accumulate.
    static let maxClaims = 4096
    /// The most steps one evaluation may take. Every predicate tested against a claim is a step (a claim tried
    /// against a condition is at least one), and a comparison of strings costs one more step per 256 bytes compared,
    /// so the time an evaluation takes is bounded by its steps whatever the policy's shape. A rule whose conditions
    /// backtrack over claims^conditions, or that tests one claim many times, reaches it in about a second and is
    /// refused.
    public static let maxEvaluationSteps = 1_000_000

    /// Counts the steps of one evaluation.
    struct Budget {
        var remaining: Int
        let isCancelled: @Sendable () -> Bool
        var exhausted = false
        /// Steps taken since `isCancelled` was last asked.
        private var sincePoll = 0
        /// All steps taken.
        private(set) var taken = 0

        init(remaining: Int, isCancelled: @escaping @Sendable () -> Bool) {
            self.remaining = remaining
            self.isCancelled = isCancelled
        }

        /// Take `cost` steps; false once the budget is spent or the evaluation cancelled (asked every 4096 steps).
        mutating func step(_ cost: Int = 1) -> Bool {
            guard !exhausted else { return false }
            remaining -= cost
            taken += cost
            sincePoll += cost
            if remaining < 0 {
                exhausted = true
                return false
            }
            if sincePoll >= 0x1000 {
                sincePoll = 0
                if isCancelled() {
                    exhausted = true
                    return false
                }
            }
            return true
        }
    }

    /// Evaluate the policy over the incoming claims: configuration rules are accepted and ignored, authorization
    /// rules run in order (`deny()` refuses at once; at least one `permit()` is needed), then issuance rules run in
    /// order, `add()` extending the incoming set for the rules after it.
    /// - Parameters:
    ///   - incoming: the claims of the verified evidence (see ``PolicyClaim``).
    ///   - maxSteps: the evaluation budget; beyond it the decision is a refusal with ``Decision/limitExceeded``.
    ///   - isCancelled: polled now and then; when it says true the evaluation stops as if out of budget.
    public func evaluate(
        _ incoming: [PolicyClaim],
        maxSteps: Int = AttestationPolicy.maxEvaluationSteps,
        isCancelled: @escaping @Sendable () -> Bool = { Task.isCancelled }
    ) -> Decision {
        var claims = incoming
        var permitted = false
        var budget = Budget(remaining: maxSteps, isCancelled: isCancelled)
        var exceeded: Decision {
            Decision(
                permitted: false,
                reason: "the policy exceeded its evaluation limit of \(maxSteps) steps or its time (conditions that "
                    + "backtrack over many claims, or many predicates); simplify its rules",
                issued: [],
                limitExceeded: true,
                steps: budget.taken
            )
        }
        for rule in authorizationRules {
            let found = matches(rule.conditions, in: claims, limit: 1, budget: &budget)
            if budget.exhausted { return exceeded }
            for binding in found {
                switch rule.action {
                case .permit: permitted = true
                case .deny:
                    return Decision(
                        permitted: false,
                        reason: "denied by the rule on line \(rule.line)",
                        issued: [],
                        steps: budget.taken
                    )
                case .add(let spec):
                    if let claim = make(spec, binding), claims.count < Self.maxClaims { claims.append(claim) }
                case .issue: break
                }
            }
        }
        guard permitted else {
            return Decision(
                permitted: false,
                reason: "no authorization rule permitted the evidence",
                issued: [],
                steps: budget.taken
            )
        }
        var issued: [PolicyClaim] = []
        for rule in issuanceRules {
            // An issuance rule acts once for every way its conditions can be met.
            let found = matches(rule.conditions, in: claims, budget: &budget)
            if budget.exhausted { return exceeded }
            for binding in found {
                guard let claim = make(rule.action.claimSpec, binding), claims.count + issued.count < Self.maxClaims
                else { continue }
                switch rule.action {
                case .issue: issued.append(claim)
                case .add:
                    claims.append(PolicyClaim(type: claim.type, value: claim.value, issuer: PolicyClaim.policyIssuer))
                case .permit, .deny: break
                }
            }
        }
        return Decision(permitted: true, reason: nil, issued: issued, steps: budget.taken)
    }

    /// Every assignment of claims to the conditions (in order) that satisfies them all; one empty assignment for a
    /// rule without conditions. Bounded: at most `limit` assignments, and `budget` steps (then `budget.exhausted`).
    func matches(
        _ conditions: [Condition],
        in claims: [PolicyClaim],
        limit: Int = 256,
        budget: inout Budget
    ) -> [[String: PolicyClaim]] {
        var results: [[String: PolicyClaim]] = []
        func search(_ index: Int, _ binding: [String: PolicyClaim]) {
            guard results.count < limit, !budget.exhausted else { return }
            guard index < conditions.count else {
                results.append(binding)
                return
            }
            let condition = conditions[index]
            for claim in claims {
                // Every predicate tested is paid for (a condition may hold many): none runs free.
                if condition.predicates.isEmpty, !budget.step() { return }
                var satisfied = true
                for predicate in condition.predicates {
                    guard budget.step() else { return }
                    guard holds(predicate, claim, binding, budget: &budget) else {
                        satisfied = false
                        break
                    }
                }
                guard !budget.exhausted else { return }
                guard satisfied else { continue }
                var next = binding
                next[condition.identifier ?? "#\(index)"] = claim
                search(index + 1, next)
            }
        }
        search(0, [:])
        return results
    }

    private func property(_ property: Property, of claim: PolicyClaim) -> PolicyClaim.Value {
        switch property {
        case .type: .string(claim.type)
        case .value: claim.value
        case .issuer: .string(claim.issuer)
        }
    }

    private func resolve(_ operand: Operand, _ binding: [String: PolicyClaim]) -> PolicyClaim.Value? {
        switch operand {
        case .literal(let value): return value
        case .reference(let identifier, let property):
            return binding[identifier].map { self.property(property, of: $0) }
        }
    }

    private func holds(
        _ predicate: Predicate,
        _ claim: PolicyClaim,
        _ binding: [String: PolicyClaim],
        budget: inout Budget
    ) -> Bool {
        guard let operand = resolve(predicate.operand, binding) else { return false }
        let actual = property(predicate.property, of: claim)
        // Comparing strings reads them: long ones cost a step per 256 bytes compared.
        if case .string(let left) = actual, case .string(let right) = operand {
            let compared = min(left.utf8.count, right.utf8.count)
            if compared >= 256, !budget.step(compared >> 8) { return false }
        }
        switch predicate.comparison {
        case .equal: return actual == operand
        case .notEqual: return actual != operand
        default:
            guard case .integer(let left) = actual, case .integer(let right) = operand else { return false }
            switch predicate.comparison {
            case .less: return left < right
            case .lessOrEqual: return left <= right
            case .greater: return left > right
            default: return left >= right
            }
        }
    }

    private func make(_ spec: ClaimSpec?, _ binding: [String: PolicyClaim]) -> PolicyClaim? {
        switch spec {
        case .matched(let identifier)?: return binding[identifier]
        case .typed(let type, let value)?:
            guard case .string(let name)? = resolve(type, binding), let resolved = resolve(value, binding) else {
                return nil
            }
            return PolicyClaim(type: name, value: resolved, issuer: PolicyClaim.policyIssuer)
        case nil: return nil
        }
    }
}

extension AttestationPolicy.Action {
    var claimSpec: AttestationPolicy.ClaimSpec? {
        switch self {
        case .issue(let spec), .add(let spec): spec
        case .permit, .deny: nil
        }
    }
}
