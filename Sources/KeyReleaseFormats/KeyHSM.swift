internal import EnclaveCore
internal import Foundation

/// The `key_hsm` member of a release answer: base64url of this JSON, as Key Vault writes it
/// (`{"schema_version": "1.0", "header": {"kid": …, "alg": "dir", "enc": …}, "ciphertext": …}`).
///
/// `enc` `RSA_AES_KEY_WRAP_256` (or `CKM_RSA_AES_KEY_WRAP`): `ciphertext` is base64url of ``RSAAESKeyWrap``'s bytes.
/// `enc` `ECDH-ES+A256KW`: `ciphertext` is base64url of the UTF-8 JWE compact text made by ``ECDHESJWE``.
public struct KeyHSM: Codable, Hashable, Sendable {
    /// The header.
    public struct Header: Codable, Hashable, Sendable {
        /// The target key's `kid` (from `x-ms-runtime.keys`), when it had one.
        public var kid: String?
        /// `dir`.
        public var alg: String
        /// `RSA_AES_KEY_WRAP_256`, `CKM_RSA_AES_KEY_WRAP` or `ECDH-ES+A256KW`.
        public var enc: String

        /// A header.
        public init(kid: String?, alg: String = "dir", enc: String) {
            self.kid = kid
            self.alg = alg
            self.enc = enc
        }
    }

    /// `1.0`.
    public var schema_version: String
    /// The wrap.
    public var header: Header
    /// The wrapped key, base64url.
    public var ciphertext: String

    /// A blob.
    public init(header: Header, ciphertext: [UInt8]) {
        schema_version = "1.0"
        self.header = header
        self.ciphertext = Base64URL.encode(ciphertext)
    }

    /// The `key_hsm` text: base64url of the JSON (sorted members).
    public func encoded() throws(KeyReleaseFormatError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Base64URL.encode(Array(try encoder.encode(self))) } catch {
            throw .malformed("key_hsm does not encode")
        }
    }

    /// Parses `key_hsm` text.
    public init(encoded text: String) throws(KeyReleaseFormatError) {
        guard text.utf8.count <= ECDHESJWE.maximumSize, let bytes = Base64URL.decode(text) else {
            throw .malformed("key_hsm is not base64url")
        }
        do { self = try JSONDecoder().decode(KeyHSM.self, from: Data(bytes)) } catch {
            throw .malformed("key_hsm is not the expected JSON")
        }
        guard schema_version == "1.0", header.alg == "dir" else {
            throw .unsupported("key_hsm schema \(schema_version), alg \(header.alg)")
        }
    }

    /// The wrapped bytes.
    public var ciphertextBytes: [UInt8]? { Base64URL.decode(ciphertext) }
}
