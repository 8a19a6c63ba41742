/// One record of the key broker's append-only audit log (`GET /audit`): a management call or a release decision.
/// Nothing secret is recorded: key names, versions, the token's issuer and `jti`, its measurement claims, the result
/// and the reason.
public struct KeyBrokerAuditEntry: Codable, Hashable, Sendable {
    /// The record's sequence number (increasing).
    public var id: Int64
    /// When, Unix seconds (fractional).
    public var time: Double
    /// The operation: `create`, `import`, `release`, `delete`, `purge`, `recover`, `rotate`, `updatePolicy`,
    /// `unwrap`, `join`.
    public var operation: String
    /// The key's name, when the operation concerns one.
    public var key: String?
    /// The key version.
    public var version: String?
    /// `granted`, `refused`, `succeeded` or `failed`.
    public var result: String
    /// Why (the failed condition's code or a management summary).
    public var reason: String
    /// The token's issuer (releases).
    public var issuer: String?
    /// The token's `jti` (releases).
    public var jti: String?
    /// The token's measurement claims (`x-ms-sgx-mrsigner`, `x-ms-sgx-mrenclave`, `x-ms-sgx-svn`, …) as JSON text.
    public var claims: String?

    /// An entry with the members given.
    public init(
        id: Int64,
        time: Double,
        operation: String,
        key: String? = nil,
        version: String? = nil,
        result: String,
        reason: String,
        issuer: String? = nil,
        jti: String? = nil,
        claims: String? = nil
    ) {
        self.id = id
        self.time = time
        self.operation = operation
        self.key = key
        self.version = version
        self.result = result
        self.reason = reason
        self.issuer = issuer
        self.jti = jti
        self.claims = claims
    }
}
