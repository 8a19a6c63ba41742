import AttestationAPI
import Crypto
import EnclaveCore
import Foundation
import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import TestSupport
import Testing
import _CryptoExtras

/// The release wraps checked by an implementation that isn't ours: Python's `cryptography` unwraps
/// `RSA_AES_KEY_WRAP_256` (RSA-OAEP-256, then `aes_key_unwrap_with_padding`, RFC 5649) and decrypts the JWE
/// (`ECDH-ES+A256KW`/`A256GCM`, with the Concat KDF written out by hand from RFC 7518 §4.6.2). Skipped, naming why,
/// when python3 or `cryptography` is missing; failed instead when `ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1`.
@Suite("KeyBroker: wraps unwrapped by Python cryptography")
struct IndependentUnwrapTests {
    static let cryptographyMissing: String? = {
        guard let result = try? Fixtures.run("/usr/bin/env", ["python3", "-c", "import cryptography"]) else {
            return "python3 could not be started"
        }
        return result.status == 0 ? nil : "python3 lacks cryptography: \(result.output)"
    }()

    static var independentRequired: Bool {
        ProcessInfo.processInfo.environment["ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS"] == "1"
    }

    static let script = #"""
        import sys, json, base64, hashlib
        from cryptography.hazmat.primitives import serialization, hashes
        from cryptography.hazmat.primitives.asymmetric import padding, ec
        from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding, aes_key_unwrap
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        def b64u(text):
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        def release_payload(jws):
            return json.loads(b64u(jws.split(".")[1]))["response"]["key"]["key"]

        mode, key_path, jws = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip()
        private = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
        key_hsm = json.loads(b64u(release_payload(jws)["key_hsm"]))
        ciphertext = b64u(key_hsm["ciphertext"])
        if mode == "rsa":
            assert key_hsm["header"]["enc"] == "RSA_AES_KEY_WRAP_256"
            size = private.key_size // 8
            kek = private.decrypt(ciphertext[:size], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                                  algorithm=hashes.SHA256(), label=None))
            print(aes_key_unwrap_with_padding(kek, ciphertext[size:]).hex())
        else:
            assert key_hsm["header"]["enc"] == "ECDH-ES+A256KW"
            parts = ciphertext.decode().split(".")
            header = json.loads(b64u(parts[0]))
            assert header["alg"] == "ECDH-ES+A256KW" and header["enc"] == "A256GCM"
            epk = header["epk"]
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[epk["crv"]]
            peer = ec.EllipticCurvePublicNumbers(int.from_bytes(b64u(epk["x"]), "big"),
                                                 int.from_bytes(b64u(epk["y"]), "big"), curve).public_key()
            z = private.exchange(ec.ECDH(), peer)
            alg = b"ECDH-ES+A256KW"
            other = len(alg).to_bytes(4, "big") + alg + (0).to_bytes(4, "big") * 2 + (256).to_bytes(4, "big")
            kek = hashlib.sha256((1).to_bytes(4, "big") + z + other).digest()
            cek = aes_key_unwrap(kek, b64u(parts[1]))
            plain = AESGCM(cek).decrypt(b64u(parts[2]), b64u(parts[3]) + b64u(parts[4]), parts[0].encode())
            print(plain.hex())
        """#

    /// Runs the script on a release answer; answers the hex it printed.
    static func unwrapInPython(mode: String, privateKeyPEM: String, answer: String) throws -> String {
        let directory = try Fixtures.temporaryDirectory()
        try Data(privateKeyPEM.utf8).write(to: URL(fileURLWithPath: directory + "/key.pem"))
        try Data(answer.utf8).write(to: URL(fileURLWithPath: directory + "/answer.jws"))
        let result = try Fixtures.run(
            "/usr/bin/env",
            ["python3", "-c", script, mode, directory + "/key.pem", directory + "/answer.jws"]
        )
        try? FileManager.default.removeItem(atPath: directory)
        #expect(result.status == 0, "\(result.output)")
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func release(to jwk: WrapJWK) throws -> String {
        let token = try TestAuthority.shared.token(TestAuthority.shared.claims(keys: [TestKeys.jwk(jwk)]))
        let response = KeyReleaseTests.broker.release(
            BrokerReleaseRequest(key: try KeyReleaseTests.importedKey(), target: token),
            now: Date()
        )
        return try #require(response.value, "\(String(describing: response.refusal))")
    }

    @Test(.enabled(if: cryptographyMissing == nil || independentRequired, "python3 with cryptography is missing"))
    func pythonUnwrapsRSAAESKeyWrap256() throws {
        if let missing = Self.cryptographyMissing {
            Issue.record("ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1 but \(missing)")
            return
        }
        let target = try _RSA.Signing.PrivateKey(keySize: .bits3072)
        let jwk = try WrapJWK(rsa: _RSA.Encryption.PublicKey(derRepresentation: target.publicKey.derRepresentation))
        let answer = try Self.release(to: jwk)
        let hex = try Self.unwrapInPython(mode: "rsa", privateKeyPEM: target.pkcs8PEMRepresentation, answer: answer)
        #expect(hex == Hex.encode(KeyReleaseTests.aesKey))
    }

    @Test(
        .enabled(if: cryptographyMissing == nil || independentRequired, "python3 with cryptography is missing"),
        arguments: ["P-256", "P-384"]
    )
    func pythonDecryptsTheJWE(curve: String) throws {
        if let missing = Self.cryptographyMissing {
            Issue.record("ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1 but \(missing)")
            return
        }
        let p256 = P256.KeyAgreement.PrivateKey()
        let p384 = P384.KeyAgreement.PrivateKey()
        let jwk = curve == "P-256" ? WrapJWK(p256: p256.publicKey) : WrapJWK(p384: p384.publicKey)
        let pem = curve == "P-256" ? p256.pemRepresentation : p384.pemRepresentation
        let answer = try Self.release(to: jwk)
        let hex = try Self.unwrapInPython(mode: "ec", privateKeyPEM: pem, answer: answer)
        #expect(hex == Hex.encode(KeyReleaseTests.aesKey))
    }
}
