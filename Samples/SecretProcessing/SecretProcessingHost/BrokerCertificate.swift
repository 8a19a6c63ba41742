import Crypto
import X509

/// The broker's release signing certificate, read for its key.
enum BrokerCertificate {
    /// The certificate's P-256 public key, raw (`x ‖ y`); `nil` when it does not parse or holds another key.
    static func p256PublicKey(der: [UInt8]) -> [UInt8]? {
        guard let certificate = try? Certificate(derEncoded: der),
            let key = P256.Signing.PublicKey(certificate.publicKey)
        else { return nil }
        return Array(key.rawRepresentation)
    }
}
