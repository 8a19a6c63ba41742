/// A JSON Web Key (RFC 7517) as the service publishes it: in the JWKS (`/certs`), as a policy signer
/// (`x-ms-policy-signer`) and as a policy management certificate (`x-ms-policy-certificates`). Absent members are
/// left out of the JSON.
public struct JSONWebKey: Codable, Hashable, Sendable {
    /// The key type: `RSA` or `EC`.
    public var kty: String
    /// The key ID tokens name in their header.
    public var kid: String?
    /// The algorithm the key signs with (`RS256`, `ES256`).
    public var alg: String?
    /// What the key is for: `sig`.
    public var use: String?
    /// The certificate chain, base64 (not base64url) DER, the key's certificate first.
    public var x5c: [String]?
    /// An EC key's curve (`P-256`).
    public var crv: String?
    /// An EC key's x coordinate, base64url.
    public var x: String?
    /// An EC key's y coordinate, base64url.
    public var y: String?
    /// An RSA key's modulus, base64url.
    public var n: String?
    /// An RSA key's public exponent, base64url.
    public var e: String?

    /// A key with the members given (absent ones are left out of the JSON).
    public init(
        kty: String,
        kid: String? = nil,
        alg: String? = nil,
        use: String? = nil,
        x5c: [String]? = nil,
        crv: String? = nil,
        x: String? = nil,
        y: String? = nil,
        n: String? = nil,
        e: String? = nil
    ) {
        self.kty = kty
        self.kid = kid
        self.alg = alg
        self.use = use
        self.x5c = x5c
        self.crv = crv
        self.x = x
        self.y = y
        self.n = n
        self.e = e
    }
}
