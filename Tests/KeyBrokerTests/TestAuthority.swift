import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import SwiftASN1
import X509
import _CryptoExtras

/// An attestation authority for the tests: an RSA 2048 signing key with a self-signed certificate, signing tokens
/// RS256 with `kid` = base64url SHA-256 of the certificate's DER (as the attestation service does).
struct TestAuthority: @unchecked Sendable {
    let url: String
    let key: _RSA.Signing.PrivateKey
    let certificateDER: [UInt8]

    static let shared = try! TestAuthority(url: "https://attest.example")
    static let other = try! TestAuthority(url: "https://other.example")

    init(url: String) throws {
        self.url = url
        key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let name = try DistinguishedName { CommonName("test authority") }
        let privateKey = Certificate.PrivateKey(key)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: Date().addingTimeInterval(-3600),
            notValidAfter: Date().addingTimeInterval(86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: Certificate.Extensions {},
            issuerPrivateKey: privateKey
        )
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        certificateDER = serializer.serializedBytes
    }

    var kid: String { Base64URL.encode(Array(SHA256.hash(data: certificateDER))) }
    var brokerAuthority: BrokerAuthority { BrokerAuthority(url: url, certificates: [certificateDER]) }

    /// A signed token; `header` members override the defaults (`alg` RS256, `kid`, `typ`).
    func token(_ claims: [String: TokenValue], header extra: [String: TokenValue] = [:]) throws -> String {
        var header: [String: TokenValue] = ["alg": .string("RS256"), "kid": .string(kid), "typ": .string("JWT")]
        for (name, value) in extra { header[name] = value }
        let input = Self.encode(header) + "." + Self.encode(claims)
        let signature = try key.signature(for: SHA256.hash(data: Array(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }

    static func encode(_ members: [String: TokenValue]) -> String {
        Base64URL.encode(Array(TokenValue.object(members).jsonText.utf8))
    }

    /// Claims of a fresh SGX token from this authority with `keys` as `x-ms-runtime.keys`.
    func claims(keys: [TokenValue], svn: Int = 3, now: Date = Date()) -> [String: TokenValue] {
        let time = Int(now.timeIntervalSince1970)
        return [
            "iss": .string(url), "iat": .integer(time - 10), "nbf": .integer(time - 10), "exp": .integer(time + 600),
            "jti": .string(UUID().uuidString), "x-ms-attestation-type": .string("sgx"),
            "x-ms-sgx-mrsigner": .string(TestKeys.signer),
            "x-ms-sgx-mrenclave": .string(String(repeating: "ab", count: 32)),
            "x-ms-sgx-svn": .integer(svn), "x-ms-sgx-product-id": .integer(1), "x-ms-sgx-is-debuggable": .bool(false),
            "x-ms-runtime": .object(["keys": .array(keys)]),
        ]
    }
}

/// Target keys the tests release to.
enum TestKeys {
    static let signer = String(repeating: "5a", count: 32)

    static func jwk(_ key: WrapJWK) -> TokenValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try! JSONDecoder().decode(TokenValue.self, from: try! encoder.encode(key))
    }

    static func policy(authority: String = TestAuthority.shared.url, minimumSVN: Int = 2) -> [UInt8] {
        Array(
            """
            {"version": "1.0.0", "anyOf": [{"authority": "\(authority)", "allOf": [
              {"claim": "x-ms-sgx-mrsigner", "equals": "\(signer)"},
              {"claim": "x-ms-sgx-svn", "greaterOrEquals": \(minimumSVN)},
              {"claim": "x-ms-sgx-is-debuggable", "equals": false}]}]}
            """.utf8
        )
    }
}
