/// The token signing key and its self-signed certificate, PEM.
public struct StoredSigningKey: Hashable, Sendable {
    public var privateKeyPEM: String
    public var certificatePEM: String

    public init(privateKeyPEM: String, certificatePEM: String) {
        self.privateKeyPEM = privateKeyPEM
        self.certificatePEM = certificatePEM
    }
}
