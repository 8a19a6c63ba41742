@_exported public import AttestationAPI
public import JWTKit

/// The claims of an attestation token, as a JWT payload (flat JSON object).
public struct AttestationTokenClaims: JWTPayload, Hashable {
    /// Every claim of the payload by name (`x-ms-attestation-type`, `x-ms-sgx-mrenclave`, `iss`, `exp`, …).
    public var claims: [String: TokenValue]

    /// Claims from a dictionary (for tests and for signing); a received token's claims come from ``TokenVerifier``.
    public init(_ claims: [String: TokenValue]) { self.claims = claims }

    public init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: TokenValue].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    /// Time and issuer checks are the verifier's (``TokenVerifier``), with its clock and skew.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}

    /// The claim named `name`, or `nil` when the token has none.
    public subscript(_ name: String) -> TokenValue? { claims[name] }
}
