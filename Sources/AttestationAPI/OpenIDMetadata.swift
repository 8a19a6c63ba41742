/// The service's OpenID metadata (`GET /.well-known/openid-configuration`): its issuer and where its token signing
/// keys are (`jwks_uri`, the `/certs` JWKS).
public struct OpenIDMetadata: Codable, Hashable, Sendable {
    /// The `iss` of the service's tokens.
    public var issuer: String
    /// The URL of the JWKS.
    public var jwksURI: String
    /// The JWS algorithms the service signs tokens with.
    public var idTokenSigningAlgValuesSupported: [String]?
    /// `["token"]`.
    public var responseTypesSupported: [String]?
    /// Claims the tokens carry.
    public var claimsSupported: [String]?

    enum CodingKeys: String, CodingKey {
        case issuer
        case jwksURI = "jwks_uri"
        case idTokenSigningAlgValuesSupported = "id_token_signing_alg_values_supported"
        case responseTypesSupported = "response_types_supported"
        case claimsSupported = "claims_supported"
    }

    /// Metadata with the given members.
    public init(
        issuer: String,
        jwksURI: String,
        idTokenSigningAlgValuesSupported: [String]? = nil,
        responseTypesSupported: [String]? = nil,
        claimsSupported: [String]? = nil
    ) {
        self.issuer = issuer
        self.jwksURI = jwksURI
        self.idTokenSigningAlgValuesSupported = idTokenSigningAlgValuesSupported
        self.responseTypesSupported = responseTypesSupported
        self.claimsSupported = claimsSupported
    }
}
