/// The answer to the policy routes: `GET /policies/{type}`, `PUT /policies/{type}` and
/// `POST /policies/{type}:reset` all answer `{"token": <a policy token>}` as Azure Attestation does, the token's
/// payload being ``PolicyResultClaims``. `GET` adds the policy's text, hash and whether it is the default, for
/// clients that do not read the token. Absent members are left out of the JSON.
public struct PolicyResponse: Codable, Hashable, Sendable {
    /// The policy token (a JWT whose payload is ``PolicyResultClaims``).
    public var token: String
    /// The policy's text (`GET` only).
    public var policy: String?
    /// The policy's hash, as `x-ms-policy-hash` gives it (`GET` only).
    public var policyHash: String?
    /// Whether the policy is the service's default (`GET` only).
    public var isDefault: Bool?

    /// A response carrying `token` and, for `GET`, the policy.
    public init(token: String, policy: String? = nil, policyHash: String? = nil, isDefault: Bool? = nil) {
        self.token = token
        self.policy = policy
        self.policyHash = policyHash
        self.isDefault = isDefault
    }
}
