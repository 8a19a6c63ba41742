/// The payload of a policy token, as Azure Attestation's clients read it: the policy (`x-ms-policy`, a JWS), its
/// hash, and for a change the result (`Updated`/`Removed`), the hash of the request JWS and its signer (a JWK with
/// `x5c`, absent when unsigned). Members the service does not set are absent.
public struct PolicyResultClaims: Codable, Hashable, Sendable {
    /// The header `typ` of policy tokens: not `JWT`, so that a relying party's token verifier refuses them as
    /// attestation tokens.
    public static let tokenType = "policy+jwt"

    /// The policy as a JWS (signed as set, or an unsigned JWS of the text).
    public var policy: String?
    /// The policy's hash.
    public var policyHash: String?
    /// `Updated` or `Removed`, for a change.
    public var policyResult: String?
    /// The base64url SHA-256 of the change request's JWS.
    public var policyTokenHash: String?
    /// The signer of the change request, as a JSON Web Key with `x5c`.
    public var policySigner: TokenValue?

    enum CodingKeys: String, CodingKey {
        case policy = "x-ms-policy"
        case policyHash = "x-ms-policy-hash"
        case policyResult = "x-ms-policy-result"
        case policyTokenHash = "x-ms-policy-token-hash"
        case policySigner = "x-ms-policy-signer"
    }

    /// Claims with the given members.
    public init(
        policy: String? = nil,
        policyHash: String? = nil,
        policyResult: String? = nil,
        policyTokenHash: String? = nil,
        policySigner: TokenValue? = nil
    ) {
        self.policy = policy
        self.policyHash = policyHash
        self.policyResult = policyResult
        self.policyTokenHash = policyTokenHash
        self.policySigner = policySigner
    }
}
