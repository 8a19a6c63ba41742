internal import AttestationAPI
internal import JWTKit

/// Claims as the payload jwt-kit signs: a flat JSON object of ``AttestationAPI/TokenValue``s. Time and issuer are
/// the service's to set; checking them is the relying party's (`TokenVerifier`).
struct SignedTokenClaims: JWTPayload {
    var claims: [String: TokenValue]

    init(_ claims: [String: TokenValue]) { self.claims = claims }

    init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: TokenValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
