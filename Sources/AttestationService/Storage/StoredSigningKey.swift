/// The token signing key and its self-signed certificate, PEM.
public struct StoredSigningKey: Hashable, Sendable {
    /// The private key (PEM), stored unencrypted: whoever can read the store can sign tokens. Protect the store (file
    /// mode 0600 for SQLite, TLS and credentials for PostgreSQL).
    public var privateKeyPEM: String
    /// The key's self-signed certificate, published in the JWKS as `x5c`.
    public var certificatePEM: String

    /// A key and its certificate, both PEM.
    public init(privateKeyPEM: String, certificatePEM: String) {
        self.privateKeyPEM = privateKeyPEM
        self.certificatePEM = certificatePEM
    }
}
