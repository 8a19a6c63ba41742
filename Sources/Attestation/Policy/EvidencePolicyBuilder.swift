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
