/// A claim as MAA's policy language sees it: a type, a typed value and its issuer.
public struct PolicyClaim: Hashable, Sendable {
    /// Claim values: strings, integers and booleans.
    public enum Value: Hashable, Sendable, CustomStringConvertible {
        /// A string value.
        case string(String)
        /// An integer value.
        case integer(Int)
        /// A boolean value.
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

    /// The claim's type, such as `x-ms-sgx-mrsigner`.
    public var type: String
    /// The claim's value.
    public var value: Value
    /// Who made the claim: ``serviceIssuer`` for every claim the service derived from the evidence and the data it
    /// binds, ``policyIssuer`` for claims an `add()` rule made. A condition that must not match a policy-made claim
    /// should test the issuer.
    public var issuer: String

    /// A claim.
    ///
    /// - Parameters:
    ///   - type: The claim's type.
    ///   - value: Its value.
    ///   - issuer: Who made it; by default the service (claims from verified evidence).
    public init(type: String, value: Value, issuer: String = PolicyClaim.serviceIssuer) {
        self.type = type
        self.value = value
        self.issuer = issuer
    }
}
