public import Crypto
internal import EnclaveCore
internal import Foundation
public import _CryptoExtras

/// The broker's release answer: a JWS (compact, `ES256`, `x5c` = the broker's signing certificate) whose payload
/// is shaped as Azure Key Vault's:
/// `{"request": {"api-version": …, "enc": …, "kid": …}, "response": {"key": {"key": {"kid": …, "kty": …,
/// "key_ops": […], "key_hsm": …}, "attributes": {…}, "release_policy": {…}}}}`.
///
/// This type reads and checks it on the receiving side (inside an enclave: no X.509 parsing, the broker's signing
/// key is pinned by the caller).
public struct ReleaseAnswer: Sendable {
    /// The released key's `kid` (`https://broker/keys/name/version`).
    public let keyID: String
    /// The released key's Key Vault type (`oct-HSM`, `RSA-HSM`, `EC-HSM`).
    public let keyType: String
    /// The released key's operations.
    public let keyOperations: [String]
    /// The wrapped key.
    public let keyHSM: KeyHSM
    /// The first `x5c` certificate of the header (DER), unparsed.
    public let certificate: [UInt8]

    /// The largest answer accepted, in characters (1 MiB).
    public static let maximumSize = 1 << 20

    struct Payload: Codable {
        struct Response: Codable { var key: KeyBundle }
        struct KeyBundle: Codable { var key: Key }
        struct Key: Codable {
            var kid: String
            var kty: String
            var key_ops: [String]?
            var key_hsm: String
        }
        var response: Response
    }

    struct Header: Codable {
        var alg: String
        var x5c: [String]?
        var typ: String?
    }

    /// Parses the answer and verifies its `ES256` signature with the broker's pinned signing key.
    ///
    /// - Throws: ``KeyReleaseFormatError``: `malformed` for anything not in the format, `integrity` when the
    ///   signature does not verify with `brokerKey`, `unsupported` for another `alg`.
    public init(jws: String, brokerKey: P256.Signing.PublicKey) throws(KeyReleaseFormatError) {
        guard jws.utf8.count <= Self.maximumSize else { throw .malformed("the answer is over \(Self.maximumSize)") }
        let parts = jws.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]),
            let payloadBytes = Base64URL.decode(parts[1]), let signature = Base64URL.decode(parts[2])
        else { throw .malformed("the answer is not a JWS compact serialization") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(headerBytes)) } catch {
            throw .malformed("the answer's header is not the expected JSON")
        }
        guard header.alg == "ES256" else { throw .unsupported("the answer is signed \(header.alg), not ES256") }
        guard signature.count == 64,
            let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            brokerKey.isValidSignature(ecdsa, for: Array((parts[0] + "." + parts[1]).utf8))
        else { throw .integrity("the answer's signature does not verify with the broker's key") }
        let payload: Payload
        do { payload = try JSONDecoder().decode(Payload.self, from: Data(payloadBytes)) } catch {
            throw .malformed("the answer's payload is not Key Vault's release response")
        }
        let key = payload.response.key.key
        keyID = key.kid
        keyType = key.kty
        keyOperations = key.key_ops ?? []
        keyHSM = try KeyHSM(encoded: key.key_hsm)
        certificate = header.x5c?.first.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? []
    }
}

extension ReleaseAnswer {
    /// The released key's bytes (AES: raw; RSA, EC: PKCS #8 DER), unwrapped with the P-256 key it was wrapped to.
    ///
    /// - Throws: ``KeyReleaseFormatError``: `unsupported` when the answer is not an `ECDH-ES+A256KW` wrap,
    ///   `integrity` when it does not decrypt with `key`.
    public func unwrap(with key: P256.KeyAgreement.PrivateKey) throws(KeyReleaseFormatError) -> [UInt8] {
        guard keyHSM.header.enc == "ECDH-ES+A256KW", let jwe = keyHSM.ciphertextBytes else {
            throw .unsupported("the answer is wrapped \(keyHSM.header.enc), not ECDH-ES+A256KW")
        }
        return try ECDHESJWE.decrypt(String(decoding: jwe, as: UTF8.self), with: key).plaintext
    }

    /// The released key's bytes, unwrapped with the RSA key it was wrapped to (`RSA_AES_KEY_WRAP_256`).
    public func unwrap(with key: _RSA.Encryption.PrivateKey) throws(KeyReleaseFormatError) -> [UInt8] {
        guard keyHSM.header.enc == "RSA_AES_KEY_WRAP_256", let ciphertext = keyHSM.ciphertextBytes else {
            throw .unsupported("the answer is wrapped \(keyHSM.header.enc), not RSA_AES_KEY_WRAP_256")
        }
        return try RSAAESKeyWrap.unwrap(ciphertext, with: key)
    }
}
