public import AttestationAPI
public import Foundation

/// A key release policy in Azure Key Vault's grammar, parsed and checked, ready to evaluate against an attestation
/// token's claims.
///
/// ```json
/// {"version": "1.0.0",
///  "anyOf": [{"authority": "https://attest.example",
///             "allOf": [{"claim": "x-ms-sgx-mrsigner", "equals": "…"},
///                       {"claim": "x-ms-sgx-svn", "greaterOrEquals": 2}]}]}
/// ```
///
/// The top level has `version` (`1.0.0` or `1.0`) and exactly one of `anyOf`/`allOf`, listing authority blocks; a
/// top-level `allOf` must name one authority only (a token has one issuer, so `allOf` across authorities could never
/// be met: refused as ``ReleasePolicyError/Code/unsatisfiableAuthorities``).
/// An authority block has `authority` (the token issuer it applies to) and exactly one of `anyOf`/`allOf`, listing
/// conditions. A condition is a claim condition, `{"claim": path, <operator>: value}` with exactly one operator,
/// or a nested `{"anyOf": […]}` / `{"allOf": […]}`. Unknown members and operators are refused by name, lists must
/// not be empty, and the document is bounded (``maximumSize``, ``maximumDepth``, ``maximumConditionCount``).
///
/// Parsing uses Foundation's `JSONDecoder`; errors name the JSON path of the failing element (see
/// ``ReleasePolicyError``). Before decoding, a scan of the bytes refuses duplicate object members (`JSONDecoder`
/// keeps the first, `JSONSerialization` the last: a policy must mean one thing to every reader) and nesting deeper
/// than the grammar can use.
public struct ReleasePolicy: Hashable, Sendable {
    /// The largest policy accepted, in bytes (64 KiB).
    public static let maximumSize = 64 * 1024
    /// The deepest nesting of `anyOf`/`allOf` lists accepted: the top-level list is level 1, an authority block's
    /// list level 2, each nested list one more.
    public static let maximumDepth = 16
    /// The most conditions (claim conditions and nested lists) accepted in one policy.
    public static let maximumConditionCount = 1024

    /// How the members of a list combine.
    public enum Combinator: String, Hashable, Sendable {
        /// At least one member must hold.
        case anyOf
        /// Every member must hold.
        case allOf
    }

    /// A claim condition's operator.
    public enum Operator: String, Hashable, Sendable, CaseIterable {
        /// The claim equals the value (same JSON type; strings compare case-sensitively).
        case equals
        /// The claim has the value's JSON type and differs from it.
        case notEquals
        /// The claim is a number less than the value.
        case less
        /// The claim is a number less than or equal to the value.
        case lessOrEquals
        /// The claim is a number greater than the value.
        case greater
        /// The claim is a number greater than or equal to the value.
        case greaterOrEquals
        /// The claim is present (`true`) or absent (`false`).
        case exists

        /// Whether the operator orders numbers.
        var isOrdering: Bool {
            switch self {
            case .less, .lessOrEquals, .greater, .greaterOrEquals: true
            case .equals, .notEquals, .exists: false
            }
        }
    }

    /// A condition of an authority block.
    public indirect enum Condition: Hashable, Sendable {
        /// A test of one claim.
        case claim(ClaimCondition)
        /// A nested list, combined by its combinator; `path` is its JSON path.
        case list(Combinator, [Condition], path: String)
    }

    /// A test of one claim: `{"claim": "x-ms-sgx-svn", "greaterOrEquals": 2}`.
    public struct ClaimCondition: Hashable, Sendable {
        /// The JSON path of the condition in the policy (`anyOf[0].allOf[1]`).
        public let path: String
        /// The claim path as written (`x-ms-runtime.client-payload.nonce`).
        public let claim: String
        /// The claim path's segments, walked through nested objects.
        public let claimSegments: [String]
        /// The operator.
        public let `operator`: Operator
        /// The value compared with (a boolean for `exists`).
        public let value: TokenValue
    }

    /// One member of the top-level list: the conditions for tokens of one issuer.
    public struct AuthorityBlock: Hashable, Sendable {
        /// The JSON path of the block (`anyOf[0]`).
        public let path: String
        /// The authority as written.
        public let authority: String
        /// The authority normalized (scheme and host lowercased, default port and trailing slashes dropped),
        /// compared with the token's normalized issuer.
        public let normalizedAuthority: String
        /// How ``conditions`` combine.
        public let combinator: Combinator
        /// The conditions.
        public let conditions: [Condition]
    }

    /// The policy's `version` as written (`1.0.0` or `1.0`).
    public let version: String
    /// How the authority blocks combine.
    public let combinator: Combinator
    /// The authority blocks.
    public let authorities: [AuthorityBlock]

    /// Parses and checks a policy document.
    ///
    /// - Parameter jsonBytes: The policy's JSON text, at most ``maximumSize`` bytes.
    /// - Throws: ``ReleasePolicyError`` naming the failing element's JSON path.
    public init(jsonBytes: Data) throws(ReleasePolicyError) {
        guard jsonBytes.count <= Self.maximumSize else {
            throw ReleasePolicyError(
                .tooLarge,
                at: "$",
                "policy is \(jsonBytes.count) bytes, more than \(Self.maximumSize)"
            )
        }
        try Self.prescan(jsonBytes)
        let root: TokenValue
        do {
            root = try JSONDecoder().decode(TokenValue.self, from: jsonBytes)
        } catch {
            throw ReleasePolicyError(.malformedJSON, at: "$", "policy is not valid JSON")
        }
        var parser = Parser()
        (version, combinator, authorities) = try parser.parseRoot(root)
    }

    /// Parses and checks a policy document given as text.
    ///
    /// - Parameter jsonText: The policy's JSON text, at most ``maximumSize`` UTF-8 bytes.
    /// - Throws: ``ReleasePolicyError`` naming the failing element's JSON path.
    public init(jsonText: String) throws(ReleasePolicyError) {
        try self.init(jsonBytes: Data(jsonText.utf8))
    }

    /// Normalizes an authority or issuer URL as every side of the broker does (see the wire type's
    /// `KeyReleasePolicy.normalizedAuthority`). `nil` when it is not an http(s) URL with a host and only a path.
    static func normalizeAuthority(_ text: String) -> String? { KeyReleasePolicy.normalizedAuthority(text) }
}
