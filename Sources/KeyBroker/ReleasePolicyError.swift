/// Why a release policy was refused: the rule it broke (``code``), the JSON path of the failing element (``path``)
/// and a message.
///
/// The code set is open (a struct of static values, not an enum), in the shape of the project's `AttestationError`:
/// adding a code never breaks a caller's `switch`. Equality compares the code, the path and the message.
///
/// The position is a JSON path (`anyOf[0].allOf[2]`), not a byte offset: the policy is parsed by Foundation's
/// `JSONDecoder`, which reports no byte positions for well-formed JSON, so a semantic error names the element by
/// its place in the document. Malformed JSON (no tree at all) is reported at the root, `$`.
public struct ReleasePolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rule the policy broke.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The rule's name.
        let name: String

        init(_ name: String) { self.name = name }

        public var description: String { name }
        /// The rule's name (``description``).
        public var rawValue: String { name }

        /// The policy is not JSON, or its root is not an object.
        public static let malformedJSON = Code("malformed JSON")
        /// The policy is larger than ``ReleasePolicy/maximumSize`` bytes.
        public static let tooLarge = Code("too large")
        /// The policy nests deeper than ``ReleasePolicy/maximumDepth`` levels.
        public static let tooDeep = Code("too deep")
        /// The policy holds more than ``ReleasePolicy/maximumConditionCount`` conditions.
        public static let tooManyConditions = Code("too many conditions")
        /// `version` is neither `1.0.0` nor `1.0`.
        public static let unsupportedVersion = Code("unsupported version")
        /// An object has the same member twice (decoders disagree on which one counts).
        public static let duplicateMember = Code("duplicate member")
        /// An object has a member the grammar does not know.
        public static let unknownMember = Code("unknown member")
        /// A claim condition names an operator the grammar does not know.
        public static let unknownOperator = Code("unknown operator")
        /// A required member (`version`, `authority`, `claim`) is missing.
        public static let missingMember = Code("missing member")
        /// A claim condition has no operator or more than one.
        public static let operatorCount = Code("operator count")
        /// An object has neither `anyOf` nor `allOf`, or both.
        public static let combinatorCount = Code("combinator count")
        /// A member's value has the wrong JSON type (an ordering against a string, `exists` with a non-boolean, …).
        public static let invalidValue = Code("invalid value")
        /// An `anyOf` or `allOf` list is empty.
        public static let emptyList = Code("empty list")
        /// An `authority` is not an absolute `https` or `http` URL with a host.
        public static let invalidAuthority = Code("invalid authority")
        /// A `claim` path is empty or has an empty segment (`a..b`, `.a`).
        public static let invalidClaimPath = Code("invalid claim path")
        /// A top-level `allOf` names more than one authority: no token has two issuers, so the policy could never
        /// be met (the key would be locked forever behind a policy that looks valid).
        public static let unsatisfiableAuthorities = Code("unsatisfiable authorities")
    }

    /// The rule the policy broke.
    public let code: Code
    /// The JSON path of the failing element (`anyOf[0].allOf[2]`), `$` for the document itself.
    public let path: String
    /// What is wrong, for people.
    public let reason: String

    /// An error naming the rule, the element's JSON path and what is wrong.
    ///
    /// - Parameters:
    ///   - code: The rule the policy broke.
    ///   - path: The JSON path of the failing element, `$` for the document.
    ///   - reason: What is wrong, for people.
    public init(_ code: Code, at path: String, _ reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    /// `path: reason`, e.g. `anyOf[0].allOf[2]: unknown operator "equal"`.
    public var description: String { "\(path): \(reason)" }
}
