import Crypto
import EnclaveCore
import Foundation
import TestSupport
import Testing

/// Samples/SecretProcessing's flow, as Scripts/secret-processing.sh runs it but on free ports: the owner creates an
/// EC key whose release policy names the enclave's signer and minimum SVN and encrypts a CSV with `enclave keys
/// encrypt`; SecretProcessingHost has the enclave get the key released, decrypt, summarise and re-encrypt to the
/// owner, who decrypts the result; the same enclave signed by another key is refused by name, and both decisions are
/// in the broker's audit log.
@Suite("Samples/SecretProcessing", .serialized)
struct SecretProcessingTests {
    @Test("Release to the policy's enclave, statistics back to the owner, another signer refused and audited")
    func releaseAndRefusal() throws {
        let services = try KeysCLITests.Services()
        let config = EnclaveConfig(productID: 1, securityVersion: 2)
        let right = try Fixtures.sign("SecretProcessingEnclave", config: config)
        let rogue = try Fixtures.sign("SecretProcessingEnclave", config: config)
        let tooOld = try Fixtures.sign(
            "SecretProcessingEnclave",
            config: EnclaveConfig(productID: 1, securityVersion: 1),
            key: right.key
        )
        let policy = """
            {"version":"1.0.0","anyOf":[{"authority":"\(services.attestation.base)","allOf":[\
            {"claim":"x-ms-sgx-mrsigner","equals":"\(right.identity.signerID.hex)"},\
            {"claim":"x-ms-sgx-svn","greaterOrEquals":2}]}]}
            """
        let policyFile = try services.write("sp-policy.json", Array(policy.utf8))
        _ = try services.ok(
            "create",
            ["owner-data", "--kty", "EC", "--curve", "P-256", "--policy", policyFile, "--immutable"]
        )
        let csv = "temperature,humidity,site\n21.5,40,a\n23.5,60,b\n19,50,c\n24,70,d\n"
        let plaintext = try services.write("readings.csv", Array(csv.utf8))
        let encrypted = services.work + "/readings.ekev"
        _ = try services.ok("encrypt", ["--key", "owner-data", plaintext, encrypted])

        // The owner checks the broker's evidence and pins its release signing certificate for the host to hand on.
        let pin = services.work + "/broker-signing.pem"
        _ = try services.ok(
            "verify-broker",
            ["--signing-cert-out", pin, "--attestation", services.attestation.base]
        )

        func host(
            _ signed: Fixtures.Signed,
            _ output: String,
            input: String? = nil,
            signingCert: String? = nil
        ) throws -> (status: Int32, output: String) {
            try Fixtures.run(
                Fixtures.product("SecretProcessingHost"),
                [
                    "--enclave", signed.image, "--signature", signed.signature,
                    "--attestation", services.attestation.base, "--broker", services.broker.base,
                    "--broker-signing-cert", signingCert ?? pin, "--key", "owner-data", input ?? encrypted, output,
                ]
            )
        }
        let resultFile = services.work + "/stats.ekev"
        let processed = try host(right, resultFile)
        #expect(processed.status == 0, "\(processed.output)")
        #expect(processed.output.contains("==> released:"), "\(processed.output)")
        #expect(processed.output.contains("read 4 rows of 3 columns"), "\(processed.output)")
        // The host's output and the result file hold none of the plaintext.
        #expect(!processed.output.contains("21.5"))
        let sealed = try #require(FileManager.default.contents(atPath: resultFile))
        #expect(!String(decoding: sealed, as: UTF8.self).contains("temperature"))

        let statsFile = services.work + "/stats.csv"
        _ = try services.ok("decrypt", ["--key", "owner-data", resultFile, statsFile])
        let stats = try String(contentsOfFile: statsFile, encoding: .utf8)
        #expect(
            stats == """
                column,count,mean,min,max
                temperature,4,22,19,24
                humidity,4,55,40,70
                site,0,,,

                """,
            "\(stats)"
        )

        for (signed, label) in [(rogue, "another signer"), (tooOld, "SVN 1")] {
            let refused = try host(signed, services.work + "/rogue.ekev")
            #expect(refused.status == 3, "\(label): \(refused.output)")
            #expect(refused.output.contains("==> refused:"), "\(label): \(refused.output)")
            #expect(refused.output.contains("PolicyNotSatisfied"), "\(label): \(refused.output)")
            #expect(!FileManager.default.fileExists(atPath: services.work + "/rogue.ekev"))
        }
        // A flipped byte in the file: the right enclave gets the key but refuses the file by name, writes nothing.
        var bytes = Array(try #require(FileManager.default.contents(atPath: encrypted)))
        bytes[bytes.count - 5] ^= 0x40
        let tampered = try services.write("tampered.ekev", bytes)
        let flipped = try host(right, services.work + "/tampered.out", input: tampered)
        #expect(flipped.status == 1, "\(flipped.output)")
        #expect(flipped.output.contains("authenticate"), "\(flipped.output)")
        #expect(!FileManager.default.fileExists(atPath: services.work + "/tampered.out"))
        // A broker signing key other than the pinned one: the release answer is refused inside the enclave.
        let other = try Fixtures.temporaryDirectory() + "/other.pem"
        _ = try Fixtures.run(ChildProcess.cli, ["keygen", "--out", other + ".key", "--public-out", other + ".pub"])
        let impostor = try host(right, services.work + "/impostor.out", signingCert: other + ".pub")
        #expect(impostor.status == 1, "\(impostor.output)")
        #expect(impostor.output.contains("not the broker's"), "\(impostor.output)")
        #expect(!FileManager.default.fileExists(atPath: services.work + "/impostor.out"))

        let audit = try services.ok("audit", ["--top", "20"])
        let decisions = audit.components(separatedBy: "\"operation\" : \"release\"").count - 1
        #expect(decisions == 5, "\(audit)")
        #expect(audit.contains("\"result\" : \"granted\""), "\(audit)")
        #expect(audit.contains("\"result\" : \"refused\""), "\(audit)")
        #expect(audit.contains(rogue.identity.signerID.hex), "the refusal names the rogue signer: \(audit)")
    }
}
