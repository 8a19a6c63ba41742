import Crypto
import X509

/// The P-256 key of a certificate, raw (x ‖ y), as an enclave pins the broker's key.
enum X509Bridge {
    static func publicKeyRaw(certificateDER: [UInt8]) throws -> [UInt8] {
        let certificate = try Certificate(derEncoded: certificateDER)
        guard let key = P256.Signing.PublicKey(certificate.publicKey) else {
            throw NotP256()
        }
        return Array(key.rawRepresentation)
    }
}

/// The certificate's key is not P-256.
struct NotP256: Error {}
