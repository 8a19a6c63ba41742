import Foundation
import X509

extension Certificate {
    /// A self-signed certificate of `key`, named `commonName`, valid from a minute ago for an hour, without
    /// extensions: the signers of this target's tests (policy administrators, `x5c` token keys).
    static func selfSigned(
        _ key: Certificate.PrivateKey,
        _ algorithm: Certificate.SignatureAlgorithm,
        commonName: String
    ) throws -> Certificate {
        let name = try DistinguishedName { CommonName(commonName) }
        return try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: key.publicKey,
            notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: algorithm,
            extensions: Certificate.Extensions(),
            issuerPrivateKey: key
        )
    }
}
