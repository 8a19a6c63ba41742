public import AttestationAPI
internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import JWTKit
internal import SwiftASN1
internal import X509

/// The service's token signing key (ECDSA P-256, ES256) with its self-signed certificate, the JWKS that publishes
/// it (with `x5c`), and token signing.
public struct TokenSigner: Sendable {
    public let keyID: String
    public let certificatePEM: String
    /// The `/certs` document.
    public let jwksJSON: String
    private let keys: JWTKeyCollection

    /// A new key and certificate for `issuer`, in the form a store keeps.
    public static func generate(issuer: String) throws -> StoredSigningKey {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("EnclaveKit Attestation Service token signing")
            OrganizationName(String(issuer.prefix(64)))
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(5 * 365 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                KeyUsage(digitalSignature: true)
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return StoredSigningKey(
            privateKeyPEM: key.pemRepresentation,
            certificatePEM: try certificate.serializeAsPEM().pemString
        )
    }

    /// Load a stored key.
    public init(_ stored: StoredSigningKey) async throws {
        let key = try P256.Signing.PrivateKey(pemRepresentation: stored.privateKeyPEM)
        let certificate = try Certificate(pemEncoded: stored.certificatePEM)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let der = serializer.serializedBytes
        guard P256.Signing.PublicKey(certificate.publicKey)?.rawRepresentation == key.publicKey.rawRepresentation else {
            throw ServiceError.internal("the stored certificate is not the signing key's")
        }
        keyID = Base64URL.encode(Array(SHA256.hash(data: der)))
        certificatePEM = stored.certificatePEM
        let raw = key.publicKey.rawRepresentation
        let x = Base64URL.encode(Array(raw.prefix(32)))
        let y = Base64URL.encode(Array(raw.suffix(32)))
        let x5c = Data(der).base64EncodedString()
        jwksJSON = """
            {"keys":[{"kty":"EC","crv":"P-256","x":"\(x)","y":"\(y)","kid":"\(keyID)","alg":"ES256","use":"sig","x5c":["\(x5c)"]}]}
            """
        keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: JWKIdentifier(string: keyID))
    }

    /// The `typ` of policy tokens (`GET /policies`, policy changes): not `JWT`, so that a relying party's
    /// ``TokenVerifier`` refuses them as attestation tokens.
    public static let policyTokenType = PolicyResultClaims.tokenType

    /// Sign `claims` as a JWT (`ES256`, this key's `kid`, `jku` pointing at the JWKS, header `typ` = `type`).
    public func sign(_ claims: [String: TokenValue], jku: String, type: String = "JWT") async throws -> String {
        var header = JWTHeader()
        header.typ = type
        header.fields["jku"] = .string(jku)
        return try await keys.sign(SignedTokenClaims(claims), kid: JWKIdentifier(string: keyID), header: header)
    }
}
