public import Crypto
internal import EnclaveCore
internal import Foundation

/// JWE compact serialization (RFC 7516) with `alg` `ECDH-ES+A256KW` and `enc` `A256GCM` (RFC 7518 §4.6, §5.3):
/// an ephemeral EC key agreement with the recipient's P-256 or P-384 key, the Concat KDF (NIST SP 800-56A) to a
/// key-encryption key, the content key wrapped with AES key wrap (RFC 3394), the content encrypted with AES-256-GCM
/// under the protected header as associated data.
public enum ECDHESJWE {
    /// The largest JWE accepted, in characters (1 MiB).
    public static let maximumSize = 1 << 20

    /// The protected header (the members this format uses).
    public struct Header: Codable, Hashable, Sendable {
        /// `ECDH-ES+A256KW`.
        public var alg: String
        /// `A256GCM`.
        public var enc: String
        /// The sender's ephemeral public key.
        public var epk: WrapJWK
        /// The recipient key's ID, if the sender named it.
        public var kid: String?
        /// A content type, if any.
        public var cty: String?
    }

    /// Encrypts `plaintext` to `recipient` (P-256 or P-384; an RSA target is refused).
    public static func encrypt(
        _ plaintext: [UInt8],
        to recipient: WrapTarget,
        keyID: String? = nil,
        contentType: String? = nil
    ) throws(KeyReleaseFormatError) -> String {
        let epk: WrapJWK
        let shared: SharedSecret
        do {
            switch recipient {
            case .p256(let key):
                let ephemeral = P256.KeyAgreement.PrivateKey()
                epk = WrapJWK(p256: ephemeral.publicKey)
                shared = try ephemeral.sharedSecretFromKeyAgreement(with: key)
            case .p384(let key):
                let ephemeral = P384.KeyAgreement.PrivateKey()
                epk = WrapJWK(p384: ephemeral.publicKey)
                shared = try ephemeral.sharedSecretFromKeyAgreement(with: key)
            case .rsa:
                throw KeyReleaseFormatError.unsupported("ECDH-ES needs an EC key")
            }
        } catch let error as KeyReleaseFormatError {
            throw error
        } catch { throw .unsupported("the key agreement failed") }
        var bareEPK = epk
        bareEPK.use = nil
        bareEPK.key_ops = nil
        let header = Header(alg: "ECDH-ES+A256KW", enc: "A256GCM", epk: bareEPK, kid: keyID, cty: contentType)
        let encodedHeader = Base64URL.encode(Array(try json(header)))
        let kek = concatKDF(shared, algorithm: "ECDH-ES+A256KW")
        let cek = SymmetricKey(size: .bits256)
        let wrappedCEK = try AESKeyWrap.wrap(cek.withUnsafeBytes { Array($0) }, using: kek)
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.seal(plaintext, using: cek, authenticating: Array(encodedHeader.utf8))
        } catch { throw .unsupported("AES-GCM encryption failed") }
        return [
            encodedHeader, Base64URL.encode(wrappedCEK), Base64URL.encode(Array(sealed.nonce)),
            Base64URL.encode(Array(sealed.ciphertext)), Base64URL.encode(Array(sealed.tag)),
        ].joined(separator: ".")
    }

    /// Decrypts a JWE made for the P-256 key `recipient`; answers the protected header and the plaintext.
    public static func decrypt(
        _ jwe: String,
        with recipient: P256.KeyAgreement.PrivateKey
    )
        throws(KeyReleaseFormatError) -> (header: Header, plaintext: [UInt8])
    {
        try decrypt(jwe, curve: "P-256") { epk throws(KeyReleaseFormatError) in
            do {
                return try recipient.sharedSecretFromKeyAgreement(
                    with: P256.KeyAgreement.PublicKey(rawRepresentation: epk)
                )
            } catch { throw .malformed("the header's epk is not a P-256 point") }
        }
    }

    /// Decrypts a JWE made for the P-384 key `recipient`.
    public static func decrypt(
        _ jwe: String,
        with recipient: P384.KeyAgreement.PrivateKey
    )
        throws(KeyReleaseFormatError) -> (header: Header, plaintext: [UInt8])
    {
        try decrypt(jwe, curve: "P-384") { epk throws(KeyReleaseFormatError) in
            do {
                return try recipient.sharedSecretFromKeyAgreement(
                    with: P384.KeyAgreement.PublicKey(rawRepresentation: epk)
                )
            } catch { throw .malformed("the header's epk is not a P-384 point") }
        }
    }

    static func decrypt(
        _ jwe: String,
        curve: String,
        agree: ([UInt8]) throws(KeyReleaseFormatError) -> SharedSecret
    ) throws(KeyReleaseFormatError) -> (header: Header, plaintext: [UInt8]) {
        guard jwe.utf8.count <= maximumSize else { throw .malformed("the JWE is over \(maximumSize) characters") }
        let parts = jwe.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5 else { throw .malformed("a JWE compact serialization has 5 parts") }
        guard let headerBytes = Base64URL.decode(parts[0]), let wrappedCEK = Base64URL.decode(parts[1]),
            let iv = Base64URL.decode(parts[2]), let ciphertext = Base64URL.decode(parts[3]),
            let tag = Base64URL.decode(parts[4])
        else { throw .malformed("a JWE part is not base64url") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(headerBytes)) } catch {
            throw .malformed("the JWE header is not the expected JSON")
        }
        guard header.alg == "ECDH-ES+A256KW", header.enc == "A256GCM" else {
            throw .unsupported("the JWE is \(header.alg)/\(header.enc), not ECDH-ES+A256KW/A256GCM")
        }
        let size = curve == "P-256" ? 32 : 48
        guard header.epk.kty == "EC", header.epk.crv == curve, let x = header.epk.x.flatMap(Base64URL.decode),
            let y = header.epk.y.flatMap(Base64URL.decode), x.count == size, y.count == size
        else { throw .malformed("the header's epk is not a \(curve) key") }
        guard iv.count == 12, tag.count == 16, wrappedCEK.count == 40 else {
            throw .malformed("the JWE's IV, tag or wrapped key has the wrong length")
        }
        let kek = concatKDF(try agree(x + y), algorithm: header.alg)
        let cek = SymmetricKey(data: try AESKeyWrap.unwrap(wrappedCEK, using: kek))
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: iv), ciphertext: ciphertext, tag: tag)
            let plaintext = try AES.GCM.open(box, using: cek, authenticating: Array(parts[0].utf8))
            return (header, Array(plaintext))
        } catch { throw .integrity("the JWE does not authenticate") }
    }

    /// The Concat KDF (NIST SP 800-56A §5.8.1, RFC 7518 §4.6.2) to a 256-bit key: SHA-256(counter ‖ Z ‖ OtherInfo),
    /// OtherInfo = AlgorithmID ‖ PartyUInfo ‖ PartyVInfo (each length-prefixed; no `apu`/`apv`) ‖ SuppPubInfo
    /// (256, 32-bit big-endian).
    static func concatKDF(_ shared: SharedSecret, algorithm: String) -> SymmetricKey {
        var input: [UInt8] = [0, 0, 0, 1]
        shared.withUnsafeBytes { input.append(contentsOf: $0) }
        let id = Array(algorithm.utf8)
        input += AESKeyWrap.bigEndian(UInt32(id.count)) + id
        input += [0, 0, 0, 0] + [0, 0, 0, 0]
        input += AESKeyWrap.bigEndian(256)
        return SymmetricKey(data: SHA256.hash(data: input))
    }

    /// The protected header's JSON text, written directly when its `epk` has only `kty`, `crv`, `x` and `y` (as
    /// ``encrypt(_:to:keyID:contentType:)`` makes it); the same bytes as `JSONEncoder` with sorted keys and slashes
    /// unescaped, which writes any other header.
    static func json(_ header: Header) throws(KeyReleaseFormatError) -> Data {
        let epk = header.epk
        if epk.kid == nil, epk.use == nil, epk.key_ops == nil, epk.n == nil, epk.e == nil, let crv = epk.crv,
            let x = epk.x, let y = epk.y
        {
            var text: [UInt8] = []
            text.reserveCapacity(256)
            func member(_ name: String, _ value: String?, first: Bool = false) {
                guard let value else { return }
                if !first { text.append(UInt8(ascii: ",")) }
                text += Array("\"\(name)\":".utf8)
                appendString(value, to: &text)
            }
            text.append(UInt8(ascii: "{"))
            member("alg", header.alg, first: true)
            member("cty", header.cty)
            member("enc", header.enc)
            text += Array(",\"epk\":{".utf8)
            member("crv", crv, first: true)
            member("kty", epk.kty)
            member("x", x)
            member("y", y)
            text.append(UInt8(ascii: "}"))
            member("kid", header.kid)
            text.append(UInt8(ascii: "}"))
            return Data(text)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return try encoder.encode(header) } catch { throw .malformed("the JWE header does not encode") }
    }

    /// A JSON string literal with `JSONEncoder`'s escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other
    /// control characters as `\u00xx`, nothing else escaped).
    static func appendString(_ value: String, to text: inout [UInt8]) {
        text.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += [UInt8(ascii: "\\"), byte]
            case 0x08: text += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: text += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0A: text += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: text += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: text += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                text += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: text.append(byte)
            }
        }
        text.append(UInt8(ascii: "\""))
    }
}
