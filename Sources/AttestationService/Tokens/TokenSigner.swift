public import AttestationAPI
internal import Crypto
internal import EnclaveCore
internal import Foundation
internal import JWTKit
internal import SwiftASN1
internal import X509
internal import _CryptoExtras

/// The service's token signing key with its self-signed certificate, the JWKS that publishes it (with `x5c`), and
/// token signing: RSA 2048 (`RS256`, what Microsoft's Azure Attestation clients verify, the default) or ECDSA P-256
/// (`ES256`).
public struct TokenSigner: Sendable {
    /// The kind of signing key (`enclave serve attestation --token-key-type`).
    public enum KeyType: String, Sendable, CaseIterable {
        /// RSA 2048, tokens signed `RS256` (PKCS #1 v1.5, SHA-256): the algorithm Microsoft's Azure Attestation
        /// clients verify (they check RSA signatures only).
        case rsa
        /// ECDSA P-256, tokens signed `ES256`.
        case ec

        /// The JWS algorithm of tokens signed with this kind of key.
        public var algorithm: String { self == .rsa ? "RS256" : "ES256" }
    }

    /// The signing key's `kid`: base64url SHA-256 of its certificate's DER.
    public let keyID: String
    /// The signing key's kind.
    public let keyType: KeyType
    /// The signing key's self-signed certificate (PEM).
    public let certificatePEM: String
    /// The `/certs` document: the signing key first, then keys kept for verification only (an earlier key of the
    /// other kind, so that tokens it signed still verify).
    public let jwksJSON: String
    /// The signing key as a JSON Web Key (with `x5c`), as the JWKS lists it.
    public let jwk: JSONWebKey
    private let keys: JWTKeyCollection

    /// A new key of `type` and its certificate for `issuer`, in the form a store keeps.
    public static func generate(issuer: String, type: KeyType = .rsa) throws -> StoredSigningKey {
        let name = try DistinguishedName {
            CommonName("EnclaveKit Attestation Service token signing")
            OrganizationName(String(issuer.prefix(64)))
        }
        let now = Date()
        let privateKey: Certificate.PrivateKey
        let pem: String
        let algorithm: Certificate.SignatureAlgorithm
        switch type {
        case .ec:
            let key = P256.Signing.PrivateKey()
            privateKey = Certificate.PrivateKey(key)
            pem = key.pemRepresentation
            algorithm = .ecdsaWithSHA256
        case .rsa:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            privateKey = Certificate.PrivateKey(key)
            pem = key.pemRepresentation
            algorithm = .sha256WithRSAEncryption
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(5 * 365 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: algorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                KeyUsage(digitalSignature: true)
            },
            issuerPrivateKey: privateKey
        )
        return StoredSigningKey(privateKeyPEM: pem, certificatePEM: try certificate.serializeAsPEM().pemString)
    }

    /// The signing key of `type` in `store` (created on first start, shared by every instance on the store), with
    /// the key of the other kind, if the store has one, published for verification only.
    public static func load(from store: any ServiceStore, type: KeyType, issuer: String) async throws -> TokenSigner {
        // A new key is made only when the store has none (an RSA key takes a moment to make).
        var stored = try await store.signingKey(kind: type.rawValue, orInsert: nil)
        if stored == nil {
            stored = try await store.signingKey(kind: type.rawValue, orInsert: try generate(issuer: issuer, type: type))
        }
        guard let stored else { throw ServiceError.internal("the signing key did not persist") }
        let other: KeyType = type == .rsa ? .ec : .rsa
        let previous = try await store.signingKey(kind: other.rawValue, orInsert: nil)
        return try await TokenSigner(stored, verificationOnly: previous.map { [$0] } ?? [])
    }

    /// Load a stored key (RSA or P-256), publishing `verificationOnly` keys beside it in the JWKS.
    public init(_ stored: StoredSigningKey, verificationOnly: [StoredSigningKey] = []) async throws {
        let loaded = try Self.loadKey(stored)
        keyID = loaded.jwk.kid ?? ""
        keyType = loaded.type
        certificatePEM = stored.certificatePEM
        jwk = loaded.jwk
        var published = [loaded.jwk]
        for extra in verificationOnly {
            guard let key = try? Self.loadKey(extra), key.jwk.kid != loaded.jwk.kid else { continue }
            published.append(key.jwk)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        jwksJSON = String(decoding: try encoder.encode(JSONWebKeySet(keys: published)), as: UTF8.self)
        keys = JWTKeyCollection()
        let kid = JWKIdentifier(string: keyID)
        switch loaded.signing {
        case .ec(let key): await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: kid)
        case .rsa(let key):
            await keys.add(rsa: try Insecure.RSA.PrivateKey(backing: key), digestAlgorithm: .sha256, kid: kid)
        }
    }

    private enum SigningKey {
        case ec(P256.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    /// A stored key parsed and checked against its certificate, with its JWK (`kid`: base64url SHA-256 of the
    /// certificate's DER).
    private static func loadKey(
        _ stored: StoredSigningKey
    ) throws -> (
        type: KeyType, signing: SigningKey, jwk: JSONWebKey
    ) {
        let certificate = try Certificate(pemEncoded: stored.certificatePEM)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let der = serializer.serializedBytes
        let kid = Base64URL.encode(Array(SHA256.hash(data: der)))
        let x5c = [Data(der).base64EncodedString()]
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: stored.privateKeyPEM) {
            guard P256.Signing.PublicKey(certificate.publicKey)?.rawRepresentation == key.publicKey.rawRepresentation
            else { throw ServiceError.internal("the stored certificate is not the signing key's") }
            let raw = key.publicKey.rawRepresentation
            let jwk = JSONWebKey(
                kty: "EC",
                kid: kid,
                alg: "ES256",
                use: "sig",
                x5c: x5c,
                crv: "P-256",
                x: Base64URL.encode(Array(raw.prefix(32))),
                y: Base64URL.encode(Array(raw.suffix(32)))
            )
            return (.ec, .ec(key), jwk)
        }
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: stored.privateKeyPEM)
        guard key.keySizeInBits >= 2048,
            _RSA.Signing.PublicKey(certificate.publicKey)?.derRepresentation == key.publicKey.derRepresentation
        else { throw ServiceError.internal("the stored certificate is not the signing key's") }
        let primitives = try key.publicKey.getKeyPrimitives()
        let jwk = JSONWebKey(
            kty: "RSA",
            kid: kid,
            alg: "RS256",
            use: "sig",
            x5c: x5c,
            n: Base64URL.encode(Array(primitives.modulus.drop { $0 == 0 })),
            e: Base64URL.encode(Array(primitives.publicExponent.drop { $0 == 0 }))
        )
        return (.rsa, .rsa(key), jwk)
    }

    /// The `typ` of policy tokens (`GET /policies`, policy changes): not `JWT`, so that a relying party's
    /// `TokenVerifier` refuses them as attestation tokens.
    public static let policyTokenType = PolicyResultClaims.tokenType

    /// Sign `claims` as a JWT (``KeyType/algorithm``, this key's `kid`, `jku` pointing at the JWKS, header `typ` =
    /// `type`).
    public func sign(_ claims: [String: TokenValue], jku: String, type: String = "JWT") async throws -> String {
        var header = JWTHeader()
        header.typ = type
        header.fields["jku"] = .string(jku)
        return try await keys.sign(SignedTokenClaims(claims), kid: JWKIdentifier(string: keyID), header: header)
    }
}
