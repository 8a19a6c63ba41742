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
/// Parse with ``init(text:)`` (errors carry line and column); evaluate with ``evaluate(_:maxSteps:isCancelled:)``.
public struct AttestationPolicy: Sendable {
    /// A claim property a condition tests.
    public enum Property: String, Sendable {
        /// `type`: the claim's type (`x-ms-sgx-mrsigner`); `value`: its value; `issuer`: who made it
        /// (``PolicyClaim/issuer``).
        case type, value, issuer
    }

    /// A comparison.
    public enum Comparison: String, Sendable {
        /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    }

    /// A literal, or a property of the claim another condition of the same rule matched (`c.value`).
    public enum Operand: Sendable {
        /// A string, integer or boolean written in the policy.
        case literal(PolicyClaim.Value)
        /// A property of the claim another condition of the rule matched and named `identifier` (`c.value`).
        case reference(identifier: String, property: Property)
    }

    /// One test on a claim property: `value == false`.
    public struct Predicate: Sendable {
        /// The claim property tested.
        public var property: Property
        /// How it is compared.
        public var comparison: Comparison
        /// What it is compared with.
        public var operand: Operand
    }

    /// `c:[type=="…", value==…]`: some claim satisfies every predicate; `c` then names it.
    public struct Condition: Sendable {
        /// The name the matched claim gets (`c`), for the rule's other conditions and its action; `nil` when unnamed.
        public var identifier: String?
        /// The tests one claim must pass, all of them.
        public var predicates: [Predicate]
    }

    /// What a rule makes: a claim given whole (`claim=c`) or by type and value.
    public enum ClaimSpec: Sendable {
        /// The claim a condition matched and named `identifier`, whole (`claim=c`).
        case matched(identifier: String)
        /// A claim of the given type and value (`type="signer", value=c.value`).
        case typed(type: Operand, value: Operand)
    }

    /// What a rule does when its conditions hold.
    public enum Action: Sendable {
        /// Authorization rules: permit the evidence (at least one rule must).
        case permit
        /// Authorization rules: refuse the evidence at once.
        case deny
        /// Put a claim into the token (issuance rules).
        case issue(ClaimSpec)
        /// Add a claim to the incoming set, for later rules.
        case add(ClaimSpec)
    }

    /// `conditions => action;`
    public struct Rule: Sendable {
        /// The conditions, all of which must hold (none: the rule always applies).
        public var conditions: [Condition]
        /// What the rule does for each way its conditions hold.
        public var action: Action
        /// The policy line the rule starts on (1-based), named in refusals.
        public var line: Int
    }

    /// `1.0`, `1.1` or `1.2`.
    public var version: String
    /// The `configurationrules` section: accepted for compatibility and not evaluated.
    public var configurationRules: [Rule]
    /// The `authorizationrules` section: decides whether a token is issued.
    public var authorizationRules: [Rule]
    /// The `issuancerules` section: the claims the policy adds to the token.
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
