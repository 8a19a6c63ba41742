import Crypto
import EnclaveCore
import Foundation
import KeyEnvelope
import TestSupport
import Testing

/// Envelope encryption under an EC broker key: the data key as a JWE `ECDH-ES+A256KW` to the key's public part,
/// unwrapped only with its private key; tampering and the wrong key refused by name.
@Suite("Envelope under EC keys (ECDH-ES+A256KW)")
struct EnvelopeECTests {
    static func seal(_ plaintext: [UInt8], crv: String, raw: [UInt8]) throws -> (file: [UInt8], dataKey: SymmetricKey) {
        let dataKey = Envelope.newDataKey()
        let half = raw.count / 2
        let header = EnvelopeHeader(
            algorithm: .ecdhESA256KW,
            keyID: "https://broker/keys/ec/0123",
            wrappedKey: try Envelope.wrapECDHES(
                dataKey,
                crv: crv,
                x: Array(raw.prefix(half)),
                y: Array(raw.suffix(half))
            ),
            fileID: Envelope.newFileID(),
            chunkSize: 4096
        )
        return (try Envelope.encrypt(plaintext, header: header, dataKey: dataKey), dataKey)
    }

    @Test("P-256 and P-384: the private key unwraps the data key and the file opens; another key does not")
    func roundTrip() throws {
        let plaintext = Array((0..<10_000).map { UInt8($0 % 251) })
        let p256 = P256.KeyAgreement.PrivateKey()
        let (file256, _) = try Self.seal(plaintext, crv: "P-256", raw: Array(p256.publicKey.rawRepresentation))
        let header256 = try Envelope.header(of: file256)
        #expect(header256.algorithm == .ecdhESA256KW)
        #expect(header256.algorithm.name == "ECDH-ES+A256KW")
        let key256 = try Envelope.unwrapECDHES(header256.wrappedKey, with: p256)
        #expect(try Envelope.decrypt(file256, dataKey: key256) == plaintext)
        expectEnclaveError(.invalidSignature) {
            try Envelope.unwrapECDHES(header256.wrappedKey, with: P256.KeyAgreement.PrivateKey())
        }

        let p384 = P384.KeyAgreement.PrivateKey()
        let (file384, _) = try Self.seal(plaintext, crv: "P-384", raw: Array(p384.publicKey.rawRepresentation))
        let header384 = try Envelope.header(of: file384)
        #expect(
            try Envelope.decrypt(file384, dataKey: try Envelope.unwrapECDHES(header384.wrappedKey, with: p384))
                == plaintext
        )
        expectEnclaveError(.invalidSignature) {
            try Envelope.unwrapECDHES(header384.wrappedKey, with: P384.KeyAgreement.PrivateKey())
        }
    }

    @Test("A flipped byte in the wrapped key or the body is refused by name")
    func tampering() throws {
        let key = P256.KeyAgreement.PrivateKey()
        let (file, dataKey) = try Self.seal(
            Array("a,b\n1,2\n".utf8),
            crv: "P-256",
            raw: Array(key.publicKey.rawRepresentation)
        )
        var body = file
        body[body.count - 2] ^= 1
        expectEnclaveError(.invalidSignature) { try Envelope.decrypt(body, dataKey: dataKey) }
        var header = try Envelope.header(of: file)
        var wrapped = header.wrappedKey
        wrapped[wrapped.count - 3] =
            wrapped[wrapped.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        header.wrappedKey = wrapped
        expectEnclaveError(.invalidSignature) { try Envelope.unwrapECDHES(header.wrappedKey, with: key) }
        expectEnclaveError(.malformedInput) { try Envelope.unwrapECDHES([0xFF, 0xFE], with: key) }
    }

    @Test("A public part that is not a P-256 or P-384 point is refused by name")
    func badKeys() {
        let dataKey = Envelope.newDataKey()
        expectEnclaveError(.malformedInput) {
            try Envelope.wrapECDHES(
                dataKey,
                crv: "P-521",
                x: [UInt8](repeating: 1, count: 66),
                y: [UInt8](repeating: 1, count: 66)
            )
        }
        expectEnclaveError(.malformedInput) {
            try Envelope.wrapECDHES(
                dataKey,
                crv: "P-256",
                x: [UInt8](repeating: 1, count: 32),
                y: [UInt8](repeating: 2, count: 32)
            )
        }
        expectEnclaveError(.malformedInput) {
            try Envelope.wrapECDHES(
                dataKey,
                crv: "P-384",
                x: [UInt8](repeating: 1, count: 32),
                y: [UInt8](repeating: 2, count: 32)
            )
        }
    }
}
