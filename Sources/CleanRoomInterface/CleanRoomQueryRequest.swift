/// What ``CleanRoomRunQuery`` takes: an approved query's ID, the runner and its typed parameters, signed by the
/// runner (ES256 over `QueryRequestSigning.message`: contract ID, query ID, runner, parameters, nonce).
public struct CleanRoomQueryRequest: Codable, Hashable, Sendable {
    /// The approved query's ID.
    public var queryID: String
    /// The party asking.
    public var runner: String
    /// The parameters by name, as `type:value` text (`integer:5`, `real:1.5`, `text:abc`).
    public var parameters: [String: String]
    /// A fresh value per request (8 to 128 characters); a nonce seen before is refused (`replay`).
    public var nonce: String
    /// The runner's ES256 signature (raw r‖s), base64url.
    public var signature: String

    /// The most parameters accepted.
    public static let maxParameters = 64
    /// The longest name, ID, parameter text or nonce accepted.
    public static let maxFieldBytes = 4096
    /// The largest request body the host accepts (64 KiB).
    public static let maxRequestBytes = 64 << 10

    /// Creates one from its members, each as documented on its property.
    public init(queryID: String, runner: String, parameters: [String: String], nonce: String, signature: String) {
        self.queryID = queryID
        self.runner = runner
        self.parameters = parameters
        self.nonce = nonce
        self.signature = signature
    }
}
