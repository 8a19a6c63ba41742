/// Builds ``EvidencePolicyRules``: rules, `if`, `if`/`else`, `for`.
@resultBuilder
public enum EvidencePolicyBuilder {
    /// A single rule.
    public static func buildExpression(_ rule: some EvidencePolicyRule) -> [any EvidencePolicyRule] { [rule] }
    /// The rules of a block, in order.
    public static func buildBlock(_ parts: [any EvidencePolicyRule]...) -> [any EvidencePolicyRule] {
        parts.flatMap { $0 }
    }
    /// The rules of an `if` without `else`: none when the condition is false.
    public static func buildOptional(_ part: [any EvidencePolicyRule]?) -> [any EvidencePolicyRule] { part ?? [] }
    /// The rules of the `if` branch.
    public static func buildEither(first part: [any EvidencePolicyRule]) -> [any EvidencePolicyRule] { part }
    /// The rules of the `else` branch.
    public static func buildEither(second part: [any EvidencePolicyRule]) -> [any EvidencePolicyRule] { part }
    /// The rules of every iteration of a `for` loop, in order.
    public static func buildArray(_ parts: [[any EvidencePolicyRule]]) -> [any EvidencePolicyRule] {
        parts.flatMap { $0 }
    }
}
