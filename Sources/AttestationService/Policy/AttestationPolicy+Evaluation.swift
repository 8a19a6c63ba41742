extension AttestationPolicy {
    /// What evaluating a policy decided.
    public struct Decision: Sendable {
        /// Authorization passed: some rule permitted and none denied.
        public var permitted: Bool
        /// Why not, when not.
        public var reason: String?
        /// Claims the issuance rules put into the token, in order.
        public var issued: [PolicyClaim]
    }

    /// The most claims a policy's `add()` rules may accumulate.
    static let maxClaims = 4096

    /// Evaluate the policy over the incoming claims: configuration rules are accepted and ignored, authorization
    /// rules run in order (`deny()` refuses at once; at least one `permit()` is needed), then issuance rules run in
    /// order, `add()` extending the incoming set for the rules after it.
    public func evaluate(_ incoming: [PolicyClaim]) -> Decision {
        var claims = incoming
        var permitted = false
        for rule in authorizationRules {
            for binding in matches(rule.conditions, in: claims).prefix(1) {
                switch rule.action {
                case .permit: permitted = true
                case .deny:
                    return Decision(permitted: false, reason: "denied by the rule on line \(rule.line)", issued: [])
                case .add(let spec):
                    if let claim = make(spec, binding), claims.count < Self.maxClaims { claims.append(claim) }
                case .issue: break
                }
            }
        }
        guard permitted else {
            return Decision(permitted: false, reason: "no authorization rule permitted the evidence", issued: [])
        }
        var issued: [PolicyClaim] = []
        for rule in issuanceRules {
            // An issuance rule acts once for every way its conditions can be met.
            for binding in matches(rule.conditions, in: claims) {
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
        return Decision(permitted: true, reason: nil, issued: issued)
    }

    /// Every assignment of claims to the conditions (in order) that satisfies them all; one empty assignment for a
    /// rule without conditions. Bounded: at most 256 assignments.
    func matches(_ conditions: [Condition], in claims: [PolicyClaim]) -> [[String: PolicyClaim]] {
        var results: [[String: PolicyClaim]] = []
        func search(_ index: Int, _ binding: [String: PolicyClaim]) {
            guard results.count < 256 else { return }
            guard index < conditions.count else {
                results.append(binding)
                return
            }
            let condition = conditions[index]
            for claim in claims where condition.predicates.allSatisfy({ holds($0, claim, binding) }) {
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

    private func holds(_ predicate: Predicate, _ claim: PolicyClaim, _ binding: [String: PolicyClaim]) -> Bool {
        guard let operand = resolve(predicate.operand, binding) else { return false }
        let actual = property(predicate.property, of: claim)
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
