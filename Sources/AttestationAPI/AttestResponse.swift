/// The answer to `POST /attest/{type}`: `{"token": <the attestation token, a JWT>}`.
public struct AttestResponse: Codable, Hashable, Sendable {
    /// The signed attestation token.
    public var token: String

    /// A response carrying `token`.
    public init(token: String) { self.token = token }
}
