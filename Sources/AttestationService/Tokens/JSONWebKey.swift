public import Foundation

/// A JSON Web Key (RFC 7517) as the service publishes it: in the JWKS (`/certs`), as a policy signer
/// (`x-ms-policy-signer`) and as a policy management certificate (`x-ms-policy-certificates`). Absent members are
/// left out of the JSON.
public struct JSONWebKey: Codable, Hashable, Sendable {
    public var kty: String
    public var kid: String?
    public var alg: String?
    public var use: String?
    /// The certificate chain, base64 (not base64url) DER, the key's certificate first.
    public var x5c: [String]?
    public var crv: String?
    public var x: String?
    public var y: String?
    public var n: String?
    public var e: String?

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

/// A JSON Web Key Set: `{"keys": […]}`.
public struct JSONWebKeySet: Codable, Hashable, Sendable {
    public var keys: [JSONWebKey]

    public init(keys: [JSONWebKey]) { self.keys = keys }
}
