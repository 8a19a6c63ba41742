/// A claim as MAA's policy language sees it: a type, a typed value and its issuer.
public struct PolicyClaim: Hashable, Sendable {
    /// Claim values: strings, integers and booleans.
    public enum Value: Hashable, Sendable, CustomStringConvertible {
        case string(String)
        case integer(Int)
        case bool(Bool)

        public var description: String {
            switch self {
            case .string(let text): "\"\(text)\""
            case .integer(let number): String(number)
            case .bool(let flag): String(flag)
            }
        }
    }

    /// Claims the service derives from verified evidence.
    public static let serviceIssuer = "AttestationService"
    /// Claims a policy adds with `add(…)`.
    public static let policyIssuer = "AttestationPolicy"
    /// Claims the attester supplies (runtime data).
    public static let customIssuer = "CustomClaim"

    public var type: String
    public var value: Value
    public var issuer: String

    public init(type: String, value: Value, issuer: String = PolicyClaim.serviceIssuer) {
        self.type = type
        self.value = value
        self.issuer = issuer
    }
}
