import Crypto
import EnclaveHost
import Foundation
import TestSupport
import Testing

/// `enclave keygen`, `sign` (with a key, and offline: digest out, signature attached) and `dump`.
@Suite("enclave keygen, sign, dump")
struct SignCLITests {
    let cli = Fixtures.product("enclave")

    func config(_ directory: String, _ json: String) throws -> String {
        let path = directory + "/config.json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func keygenSignDumpAndLoad() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let image = directory + "/HelloEnclave"
        try FileManager.default.copyItem(atPath: Fixtures.product("HelloEnclave"), toPath: image)
        let key = directory + "/signer.pem"
        let keygen = try Fixtures.run(cli, ["keygen", "--out", key])
        #expect(keygen.status == 0, "\(keygen.output)")
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A second keygen must not silently replace the key.
        #expect(try Fixtures.run(cli, ["keygen", "--out", key]).status != 0)

        let configPath = try config(directory, #"{"productID": 42, "securityVersion": 7, "maxThreads": 3}"#)
        let sign = try Fixtures.run(cli, ["sign", "--key", key, "--config", configPath, image])
        #expect(sign.status == 0, "\(sign.output)")

        let dump = try Fixtures.run(cli, ["dump", "--json", image])
        #expect(dump.status == 0, "\(dump.output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(dump.output.utf8)) as? [String: Any])
        let pem = try String(contentsOfFile: key, encoding: .utf8)
        let signerID = SHA256.hash(
            data: try P256.Signing.PrivateKey(pemRepresentation: pem).publicKey.derRepresentation
        )
        #expect(json["signerID"] as? String == signerID.map { String(format: "%02x", $0) }.joined())
        #expect(json["productID"] as? Int == 42)
        #expect(json["securityVersion"] as? Int == 7)
        #expect(json["debug"] as? Bool == false)
        #expect(json["maxThreads"] as? Int == 3)

        let enclave = try await Enclave.load(path: image)
        #expect(enclave.identity.uniqueID.hex == json["uniqueID"] as? String)
        await enclave.terminate()

        let text = try Fixtures.run(cli, ["dump", image])
        #expect(text.output.contains("productID:       42\n"))
        #expect(text.output.contains("uniqueID:        \(enclave.identity.uniqueID.hex)\n"))
    }

    /// Signer and product are the whole identity (sealing, release policies, counters, joins): `sign` names the
    /// product it signed and reminds that no other code may share it, offline too (review 6, E; failed before: no
    /// product, no reminder).
    @Test func signNamesTheProductAndRemindsItMustBeUnique() throws {
        let directory = try Fixtures.temporaryDirectory()
        let image = directory + "/HelloEnclave"
        try FileManager.default.copyItem(atPath: Fixtures.product("HelloEnclave"), toPath: image)
        let key = directory + "/signer.pem"
        #expect(try Fixtures.run(cli, ["keygen", "--out", key]).status == 0)
        let configPath = try config(directory, #"{"productID": 9, "securityVersion": 1}"#)
        let signed = try Fixtures.run(cli, ["sign", "--key", key, "--config", configPath, image])
        #expect(signed.status == 0, "\(signed.output)")
        let offline = try Fixtures.run(
            cli,
            ["sign", "--config", configPath, "--digest-out", directory + "/tosign.bin", image]
        )
        #expect(offline.status == 0, "\(offline.output)")
        for output in [signed.output, offline.output] {
            #expect(output.contains("productID: 9\n"), "\(output)")
            #expect(
                output.contains("note: product 9: sign no other enclave code with this key and product"),
                "\(output)"
            )
        }
    }

    @Test func offlineSigningRoundTrip() async throws {
        let directory = try Fixtures.temporaryDirectory()
        let image = directory + "/HelloEnclave"
        try FileManager.default.copyItem(atPath: Fixtures.product("HelloEnclave"), toPath: image)
        let configPath = try config(directory, #"{"productID": 1, "securityVersion": 1}"#)
        let digest = directory + "/tosign.bin"
        #expect(try Fixtures.run(cli, ["sign", "--config", configPath, "--digest-out", digest, image]).status == 0)

        // The "HSM": sign the exact bytes elsewhere.
        let hsmKey = P256.Signing.PrivateKey()
        let toSign = try Data(contentsOf: URL(fileURLWithPath: digest))
        let signature = directory + "/sig.der"
        try hsmKey.signature(for: toSign).derRepresentation.write(to: URL(fileURLWithPath: signature))
        let publicKey = directory + "/signer.pub.pem"
        try Data(hsmKey.publicKey.pemRepresentation.utf8).write(to: URL(fileURLWithPath: publicKey))

        let attach = try Fixtures.run(
            cli,
            ["sign", "--config", configPath, "--attach-signature", signature, "--public-key", publicKey, image]
        )
        #expect(attach.status == 0, "\(attach.output)")
        let enclave = try await Enclave.load(path: image)
        #expect(enclave.identity.signerID.bytes == Array(SHA256.hash(data: hsmKey.publicKey.derRepresentation)))
        await enclave.terminate()

        // A signature by another key, or over other bytes, is refused.
        let wrong = directory + "/wrong.der"
        try P256.Signing.PrivateKey().signature(for: toSign).derRepresentation.write(to: URL(fileURLWithPath: wrong))
        let refused = try Fixtures.run(
            cli,
            ["sign", "--config", configPath, "--attach-signature", wrong, "--public-key", publicKey, image]
        )
        #expect(refused.status != 0)
        #expect(refused.output.contains("does not verify"))
    }

    @Test func reportsBadInputClearly() throws {
        let directory = try Fixtures.temporaryDirectory()
        let configPath = try config(directory, #"{"productID": 1, "securityVersion": 1, "maxThread": 2}"#)
        let key = directory + "/k.pem"
        #expect(try Fixtures.run(cli, ["keygen", "--out", key]).status == 0)
        let typo = try Fixtures.run(
            cli,
            ["sign", "--key", key, "--config", configPath, Fixtures.product("HelloEnclave")]
        )
        #expect(typo.status != 0)
        #expect(typo.output.contains("unknown configuration key \"maxThread\""))
        let missing = try Fixtures.run(cli, ["dump", directory + "/nothing"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("cannot read signature structure"))
    }
}
