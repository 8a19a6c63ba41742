import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import TestSupport
import Testing

/// Every `enclave keys` verb against a real broker: `enclave serve attestation` and `enclave serve keybroker` (its
/// broker enclave signed on first start in its data directory) as processes, the CLI as an operator runs it.
@Suite("enclave keys against a served key broker", .serialized)
struct KeysCLITests {
    static let owner = try! Digest32(bytes: [UInt8](repeating: 0x5A, count: 32))
    static let stranger = try! Digest32(bytes: [UInt8](repeating: 0x66, count: 32))

    /// The two services and the paths the CLI needs.
    final class Services {
        let work: String
        let attestation: ServedProcess
        let broker: ServedProcess
        let brokerData: String

        init() throws {
            _ = Fixtures.platformDirectory
            work = try Fixtures.temporaryDirectory()
            attestation = try ServedProcess([
                "--insecure-http", "--allow-simulated", "--data-dir", work + "/attestation",
            ])
            brokerData = work + "/broker"
            broker = try ServedProcess(
                ["--insecure-http", "--data-dir", brokerData, "--authority", attestation.base],
                service: "keybroker"
            )
        }

        /// `enclave keys VERB ARGUMENTS` with the broker's options.
        func keys(_ verb: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
            try Fixtures.run(
                ChildProcess.cli,
                ["keys", verb, "--broker", broker.base, "--broker-data-dir", brokerData] + arguments
            )
        }

        /// `keys VERB …`, expected to succeed.
        func ok(
            _ verb: String,
            _ arguments: [String],
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws
            -> String
        {
            let result = try keys(verb, arguments)
            #expect(result.status == 0, "keys \(verb) \(arguments): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }

        /// `keys VERB …`, expected to fail naming `reason`.
        func refused(
            _ verb: String,
            _ arguments: [String],
            naming reason: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let result = try keys(verb, arguments)
            #expect(result.status != 0, "keys \(verb) succeeded: \(result.output)", sourceLocation: sourceLocation)
            #expect(result.output.contains(reason), "\(result.output)", sourceLocation: sourceLocation)
        }

        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = work + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }

        /// A policy releasing to the owner's signer, tokens of this attestation service.
        func policyFile() throws -> String {
            let policy = """
                {"version":"1.0.0","anyOf":[{"authority":"\(attestation.base)","allOf":[\
                {"claim":"x-ms-sgx-mrsigner","equals":"\(KeysCLITests.owner.hex)"}]}]}
                """
            return try write("policy.json", Array(policy.utf8))
        }

        /// An attestation token (via `enclave attest`) for a simulated enclave of `signer` whose runtime data names
        /// a fresh P-256 key.
        func tokenFile(signer: Digest32) throws -> String {
            let key = P256.KeyAgreement.PrivateKey().publicKey.rawRepresentation
            let runtime = Array(
                (#"{"keys":[{"kty":"EC","crv":"P-256","kid":"release","x":""# + Base64URL.encode(key.prefix(32))
                    + #"","y":""# + Base64URL.encode(key.suffix(32)) + #""}]}"#).utf8
            )
            let identity = EnclaveIdentity(
                uniqueID: try Digest32(bytes: [UInt8](repeating: 0x11, count: 32)),
                signerID: signer,
                productID: 3,
                securityVersion: 2,
                attributes: []
            )
            let quote = try SimulatedPlatform.open(directory: Fixtures.platformDirectory).quote(
                for: identity,
                reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
            )
            let evidence = try write("evidence-\(signer.hex.prefix(4)).bin", quote)
            let runtimeFile = try write("runtime-\(signer.hex.prefix(4)).json", runtime)
            let attested = try Fixtures.run(
                ChildProcess.cli,
                ["attest", "--service", attestation.base, "--json", "--runtime-data", runtimeFile, evidence]
            )
            #expect(attested.status == 0, "\(attested.output)")
            let token = try #require(
                attested.output.split(separator: "\n").last { $0.split(separator: ".").count == 3 },
                "\(attested.output)"
            )
            return try write("token-\(signer.hex.prefix(4)).jwt", Array(token.utf8))
        }
    }

    @Test("create, import, list, show, rotate, encrypt, decrypt, release, delete, recover, purge")
    func everyVerb() throws {
        let services = try Services()
        let policy = try services.policyFile()
        let attestationOption = ["--attestation", services.attestation.base]

        _ = try services.ok("create", ["aes-key", "--kty", "oct", "--policy", policy])
        _ = try services.ok("create", ["rsa-key", "--kty", "RSA", "--size", "2048"])
        _ = try services.ok("create", ["ec-key", "--kty", "EC", "--curve", "P-256"])

        // Bring your own key: 32 raw bytes, a PEM EC key, a JWK; all wrapped to the attested import key.
        let secret = try services.write("secret.key", [UInt8](repeating: 0x42, count: 32))
        let imported = try services.ok(
            "import",
            [
                "byok", "--key-file", secret, "--kty", "oct", "--exportable", "--policy", policy, "--immutable",
                "--allow-admin-unwrap",
            ] + attestationOption
        )
        #expect(imported.contains("\"exportable\" : true"), "\(imported)")
        #expect(imported.contains("unwrapKey"), "\(imported)")
        // Without --allow-admin-unwrap, a key under a release policy leaves out decrypt and unwrapKey: the broker's
        // administrator (and its host) can encrypt to it but not unwrap its data keys (KeyOperationNotAllowed).
        let sealedSecret = try services.write("sealed-secret.key", [UInt8](repeating: 0x43, count: 32))
        let policyOnly = try services.ok(
            "import",
            ["byok-policy", "--key-file", sealedSecret, "--kty", "oct", "--exportable", "--policy", policy]
                + attestationOption
        )
        #expect(!policyOnly.contains("unwrapKey") && policyOnly.contains("wrapKey"), "\(policyOnly)")
        try services.refused(
            "import",
            ["byok-flag", "--key-file", sealedSecret, "--allow-admin-unwrap"] + attestationOption,
            naming: "--allow-admin-unwrap needs --policy"
        )
        let pem = try services.write("ec.pem", Array(P384.Signing.PrivateKey().pemRepresentation.utf8))
        #expect(try services.ok("import", ["byok-ec", "--key-file", pem] + attestationOption).contains("P-384"))
        let jwk = try services.write(
            "aes.jwk",
            Array((#"{"kty":"oct","k":""# + Base64URL.encode([UInt8](repeating: 7, count: 32)) + #""}"#).utf8)
        )
        _ = try services.ok("import", ["byok-jwk", "--key-file", jwk, "--kty", "oct"] + attestationOption)
        // Bad input: refused by name, nothing imported.
        let short = try services.write("short.key", [UInt8](repeating: 1, count: 31))
        try services.refused("import", ["bad", "--key-file", short] + attestationOption, naming: "31 bytes")
        try services.refused(
            "import",
            ["bad", "--key-file", pem, "--kty", "oct"] + attestationOption,
            naming: "not oct"
        )
        try services.refused("import", ["bad", "--key-file", secret, "--exportable"], naming: "--policy")
        try services.refused(
            "import",
            ["bad", "--key-file", secret, "--broker-signer", Self.stranger.hex] + attestationOption,
            naming: "BrokerIdentityMismatch"
        )
        // Without the broker's signature file a signer alone is not enough: another enclave of that signer would
        // pass for the broker. Refused before anything is sent.
        let noSignature = services.work + "/no-broker-signature"
        try FileManager.default.createDirectory(atPath: noSignature, withIntermediateDirectories: true)
        try services.refused(
            "verify-broker",
            ["--broker-data-dir", noSignature, "--broker-signer", Self.stranger.hex] + attestationOption,
            naming: "--broker-product"
        )
        // The same check on its own, saving the signing certificate to pin.
        let pin = services.work + "/broker-signing.pem"
        let verified = try services.ok("verify-broker", ["--signing-cert-out", pin] + attestationOption)
        #expect(verified.contains("signer:") && verified.contains("import key:"), "\(verified)")
        #expect(try String(contentsOfFile: pin, encoding: .utf8).hasPrefix("-----BEGIN CERTIFICATE-----"))
        try services.refused(
            "verify-broker",
            ["--broker-min-svn", "9"] + attestationOption,
            naming: "BrokerIdentityMismatch"
        )
        let listed = try services.ok("list", [])
        for name in ["aes-key", "rsa-key", "ec-key", "byok", "byok-ec", "byok-jwk"] {
            #expect(listed.contains("/keys/\(name)"), "\(name) missing: \(listed)")
        }
        #expect(!listed.contains("/keys/bad"), "\(listed)")

        #expect(try services.ok("show", ["rsa-key"]).contains("\"n\""))
        _ = try services.ok("rotate", ["rsa-key"])
        let versions = try services.ok("show", ["rsa-key", "--versions"])
        #expect(versions.components(separatedBy: "/keys/rsa-key/").count - 1 == 2, "\(versions)")

        // Envelope encryption under each kind of key, round trip, and a flipped byte refused.
        let plaintext = try services.write("plain.csv", Array("a,b\n1,2\n3,4\n".utf8))
        for key in ["aes-key", "rsa-key", "ec-key", "byok"] {
            let sealed = services.work + "/\(key).ekev"
            let opened = services.work + "/\(key).out"
            _ = try services.ok("encrypt", ["--key", key, plaintext, sealed])
            _ = try services.ok("decrypt", ["--key", key, sealed, opened])
            #expect(FileManager.default.contents(atPath: opened) == FileManager.default.contents(atPath: plaintext))
            var bytes = Array(try #require(FileManager.default.contents(atPath: sealed)))
            bytes[bytes.count - 3] ^= 1
            let tampered = try services.write("\(key).tampered", bytes)
            try services.refused("decrypt", ["--key", key, tampered, opened + "2"], naming: "authenticate")
            try services.refused("decrypt", ["--key", "byok-jwk", sealed, opened + "3"], naming: "not key byok-jwk")
        }
        let policySealed = services.work + "/byok-policy.ekev"
        _ = try services.ok("encrypt", ["--key", "byok-policy", plaintext, policySealed])
        try services.refused(
            "decrypt",
            ["--key", "byok-policy", policySealed, services.work + "/byok-policy.out"],
            naming: "400 KeyOperationNotAllowed"
        )

        // Release: the policy's signer gets the broker's JWS, another signer is refused by name.
        let released = try services.ok("release", ["byok", "--token", try services.tokenFile(signer: Self.owner)])
        #expect(released.split(separator: "\n").contains { $0.split(separator: ".").count == 3 }, "\(released)")
        try services.refused(
            "release",
            ["byok", "--token", try services.tokenFile(signer: Self.stranger)],
            naming: "PolicyNotSatisfied"
        )

        _ = try services.ok("delete", ["ec-key"])
        try services.refused("show", ["ec-key"], naming: "KeyNotFound")
        _ = try services.ok("delete", ["ec-key", "--recover"])
        _ = try services.ok("show", ["ec-key"])
        _ = try services.ok("delete", ["ec-key"])
        #expect(try services.ok("delete", ["ec-key", "--purge"]).contains("purged ec-key"))
        try services.refused("delete", ["ec-key", "--recover"], naming: "NotFound")
    }
}
