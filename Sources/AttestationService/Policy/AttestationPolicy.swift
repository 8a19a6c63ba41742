/// An attestation policy in Microsoft Azure Attestation's language (versions 1.0 to 1.2):
///
/// ```
/// version=1.0;
/// authorizationrules {
///     c:[type=="x-ms-sgx-is-debuggable", value==false] => permit();
/// };
/// issuancerules {
///     c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value);
/// };
/// ```
///
/// Parse with ``init(text:)`` (errors carry line and column); evaluate with ``evaluate(_:)``.
public struct AttestationPolicy: Sendable {
    /// A claim property a condition tests.
    public enum Property: String, Sendable {
        case type, value, issuer
    }

    /// A comparison.
    public enum Comparison: String, Sendable {
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    }

    /// A literal, or a property of the claim another condition of the same rule matched (`c.value`).
    public enum Operand: Sendable {
        case literal(PolicyClaim.Value)
        case reference(identifier: String, property: Property)
    }

    /// One test on a claim property: `value == false`.
    public struct Predicate: Sendable {
        public var property: Property
        public var comparison: Comparison
        public var operand: Operand
    }

    /// `c:[type=="…", value==…]`: some claim satisfies every predicate; `c` then names it.
    public struct Condition: Sendable {
        public var identifier: String?
        public var predicates: [Predicate]
    }

    /// What a rule makes: a claim given whole (`claim=c`) or by type and value.
    public enum ClaimSpec: Sendable {
        case matched(identifier: String)
        case typed(type: Operand, value: Operand)
    }

    /// What a rule does when its conditions hold.
    public enum Action: Sendable {
        case permit
        case deny
        /// Put a claim into the token (issuance rules).
        case issue(ClaimSpec)
        /// Add a claim to the incoming set, for later rules.
        case add(ClaimSpec)
    }

    /// `conditions => action;`
    public struct Rule: Sendable {
        public var conditions: [Condition]
        public var action: Action
        public var line: Int
    }

    /// `1.0`, `1.1` or `1.2`.
    public var version: String
    public var configurationRules: [Rule]
    public var authorizationRules: [Rule]
    public var issuanceRules: [Rule]
    /// The policy text as given.
    public let text: String

    /// The policy every attestation type starts with: permit all verified evidence, issue nothing extra.
    public static let defaultText = """
        version=1.0;
        authorizationrules
        {
            => permit();
        };
        issuancerules
        {
        };
        """

    /// Parse a policy.
    /// - Throws: ``PolicySyntaxError`` with the line and column of the first mistake.
    public init(text: String) throws(PolicySyntaxError) {
        var parser = try PolicyParser(text: text)
        let parsed = try parser.document()
        self.version = parsed.version
        self.configurationRules = parsed.configuration
        self.authorizationRules = parsed.authorization
        self.issuanceRules = parsed.issuance
        self.text = text
    }
}
