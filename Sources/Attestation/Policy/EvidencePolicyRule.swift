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

/// The result of one rule: met, or refused with the requirement, the reason and the setting that would accept it.
public enum EvidencePolicyResult: Hashable, Sendable {
    case meetsPolicy
    case failsToMeetPolicy(EvidencePolicy.Violation)
}

/// A rule from a closure: `nil` when the claims meet it.
public struct EvidenceRequirement: EvidencePolicyRule {
    /// The requirement's name (the ``EvidencePolicy/Violation/requirement`` of its refusals).
    public var name: String
    private let check: @Sendable (Claims) -> EvidencePolicy.Violation?

    public init(_ name: String, _ check: @escaping @Sendable (Claims) -> EvidencePolicy.Violation?) {
        self.name = name
        self.check = check
    }

    public func evaluate(_ claims: Claims) -> EvidencePolicyResult {
        check(claims).map { .failsToMeetPolicy($0) } ?? .meetsPolicy
    }
}

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

/// Builds ``EvidencePolicyRules``: rules, `if`, `if`/`else`, `for`.
@resultBuilder
public enum EvidencePolicyBuilder {
    public static func buildExpression(_ rule: some EvidencePolicyRule) -> [any EvidencePolicyRule] { [rule] }
    public static func buildBlock(_ parts: [any EvidencePolicyRule]...) -> [any EvidencePolicyRule] {
        parts.flatMap { $0 }
    }
    public static func buildOptional(_ part: [any EvidencePolicyRule]?) -> [any EvidencePolicyRule] { part ?? [] }
    public static func buildEither(first part: [any EvidencePolicyRule]) -> [any EvidencePolicyRule] { part }
    public static func buildEither(second part: [any EvidencePolicyRule]) -> [any EvidencePolicyRule] { part }
    public static func buildArray(_ parts: [[any EvidencePolicyRule]]) -> [any EvidencePolicyRule] {
        parts.flatMap { $0 }
    }
}
