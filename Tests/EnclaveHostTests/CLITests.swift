import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Testing

@Suite("enclave CLI")
struct CLITests {
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

@Suite("enclave verify")
struct VerifyCLITests {
    let cli = Fixtures.product("enclave")

    /// Evidence from the hello enclave through HelloHost --evidence, bound to `nonce`.
    func evidence(nonce: String) throws -> String {
        let signed = try Fixtures.sign("HelloEnclave")
        let out = (signed.signature as NSString).deletingLastPathComponent + "/evidence.bin"
        let run = try Fixtures.run(
            Fixtures.product("HelloHost"),
            ["--enclave", signed.image, "--signature", signed.signature, "--evidence", out, "--nonce", nonce]
        )
        #expect(run.status == 0, "\(run.output)")
        return out
    }

    @Test func simulatedEvidenceVerifiesOnlyWhenAllowedAndBound() throws {
        let path = try evidence(nonce: "c0ffee")
        let ok = try Fixtures.run(cli, ["verify", path, "--allow-simulated", "--nonce", "c0ffee", "--json"])
        #expect(ok.status == 0, "\(ok.output)")
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(ok.output.utf8)) as? [String: Any])
        for key in ["format", "debug", "simulated", "reportData", "tcbStatus", "advisoryIDs", "verified", "policy"] {
            #expect(claims[key] != nil, "missing \(key)")
        }
        let sgx = try #require(claims["sgx"] as? [String: Any])
        for key in ["mrEnclave", "mrSigner", "isvProdID", "isvSVN", "attributes", "cpuSVN"] {
            #expect(sgx[key] != nil, "missing sgx.\(key)")
        }
        #expect(claims["simulated"] as? Bool == true)
        #expect(claims["format"] as? String == "sgx")
        #expect(claims["tcbStatus"] as? String == "UpToDate")  // the local platform's collateral

        // The platform's collateral, written as PCS files and as a bundle, verifies the same evidence.
        let out = (path as NSString).deletingLastPathComponent + "/collateral"
        #expect(try Fixtures.run(cli, ["platform", "collateral", "--out", out]).status == 0)
        for source in [out, out + "/collateral.json"] {
            let run = try Fixtures.run(cli, ["verify", path, "--allow-simulated", "--collateral", source, "--json"])
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("\"tcbStatus\" : \"UpToDate\""), "\(run.output)")
        }

        let refused = try Fixtures.run(cli, ["verify", path, "--nonce", "c0ffee"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("verification failed at policy"))

        let wrongNonce = try Fixtures.run(cli, ["verify", path, "--allow-simulated", "--nonce", "c0ffef"])
        #expect(wrongNonce.status != 0)
        #expect(wrongNonce.output.contains("verification failed at nonce"))
    }

    @Test func tamperedEvidenceNamesTheCheck() throws {
        let path = try evidence(nonce: "01")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[48 + 70] ^= 1  // inside MRENCLAVE
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let run = try Fixtures.run(cli, ["verify", path, "--allow-simulated"])
        #expect(run.status != 0)
        #expect(run.output.contains("verification failed at quote signature"))
    }

    @Test func realQuoteVerifiesToIntelsRoot() throws {
        let quote = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote"
        // Without collateral a real quote is refused, naming the way out.
        let bare = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277"])
        #expect(bare.status != 0)
        #expect(bare.output.contains("verification failed at collateral"), "\(bare.output)")
        #expect(bare.output.contains("--collateral") && bare.output.contains("--chain-only"), "\(bare.output)")
        #expect(!bare.output.contains("verified: "), "\(bare.output)")  // no claims printed
        // --chain-only: accepted, and it says what was not checked.
        let run = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277", "--chain-only", "--json"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("revocation and TCB were not checked"), "\(run.output)")
        let claims = try json(run.output)
        #expect(claims["simulated"] as? Bool == false)
        #expect(claims["verified"] as? String == "chain-only")
        #expect(claims["notChecked"] as? [String] == ["revocation", "TCB"])
        #expect(claims["tcbStatus"] == nil)
        let flat = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277", "--chain-only"])
        #expect(flat.status == 0, "\(flat.output)")
        #expect(flat.output.contains("verified: chain-only"), "\(flat.output)")
        #expect(flat.output.contains("warning: chain-only verification: revocation and TCB were not checked"))

        let bundle = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote_collateral.json"
        let full = try Fixtures.run(cli, ["verify", quote, "--collateral", bundle, "--at", "1752919277", "--json"])
        #expect(full.status == 0, "\(full.output)")
        let status = try #require(try JSONSerialization.jsonObject(with: Data(full.output.utf8)) as? [String: Any])
        #expect(status["tcbStatus"] as? String == "ConfigurationAndSWHardeningNeeded")
        #expect(status["verified"] as? Bool == true && status["notChecked"] == nil)
        #expect(status["advisoryIDs"] as? [String] == ["INTEL-SA-00289", "INTEL-SA-00615"])
        let late = try Fixtures.run(cli, ["verify", quote, "--collateral", bundle, "--at", "1752919278"])
        #expect(late.status != 0)
        #expect(late.output.contains("verification failed at collateral validity"))
    }

    /// The JSON document printed before any error line.
    func json(_ output: String) throws -> [String: Any] {
        let start = output.firstIndex(of: "{") ?? output.startIndex
        let end = output.lastIndex(of: "}").map { output.index(after: $0) } ?? output.endIndex
        let document = String(output[start..<end])
        return try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
    }

    /// An out-of-date platform is refused by default, naming the default and the flag; the flag accepts it. (A
    /// private simulated platform whose root is given as a trust anchor, and whose collateral states a newer TCB.)
    @Test func outOfDateIsRefusedByDefaultAndAcceptedWithItsFlag() throws {
        let directory = try Fixtures.temporaryDirectory()
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        let identity = EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 1, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
            productID: 1,
            securityVersion: 1,
            attributes: []
        )
        try Data(platform.quote(for: identity, reportData: [UInt8](repeating: 0, count: 64)))
            .write(to: URL(fileURLWithPath: directory + "/quote.bin"))
        try Data(platform.rootCertificatePEM().utf8).write(to: URL(fileURLWithPath: directory + "/root.pem"))
        var newer = try platform.platformInfo().cpuSVN.map(Int.init)
        newer[0] += 1
        try platform.setTCB(upToDateComponents: newer)
        try Data(platform.collateralJSON(issued: Date().addingTimeInterval(-60)))
            .write(to: URL(fileURLWithPath: directory + "/collateral.json"))
        let arguments = [
            "verify", directory + "/quote.bin", "--collateral", directory + "/collateral.json", "--trust-anchor",
            directory + "/root.pem",
        ]
        let refused = try Fixtures.run(cli, arguments + ["--json"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("verification failed at policy (TCB status)"), "\(refused.output)")
        #expect(refused.output.contains("OutOfDate is not accepted"), "\(refused.output)")
        #expect(refused.output.contains("refused by default, --allow-out-of-date accepts it"), "\(refused.output)")
        let policy = try #require(try json(refused.output)["policy"] as? [String: Any])
        #expect(policy["requirement"] as? String == "TCB status" && policy["flag"] as? String == "--allow-out-of-date")
        let accepted = try Fixtures.run(cli, arguments + ["--allow-out-of-date", "--json"])
        #expect(accepted.status == 0, "\(accepted.output)")
        #expect(try json(accepted.output)["tcbStatus"] as? String == "OutOfDate")

        // SEV-SNP: VMPL 1 is refused by default, --max-vmpl 1 accepts it.
        let vlek = [
            "verify", Vectors.root + "/snp/trustee/test-vlek-report.bin", "--format", "sev-snp", "--vcek",
            Vectors.root + "/snp/trustee/test-vlek.der", "--at", "1752919234",
        ]
        let vmpl = try Fixtures.run(cli, vlek)
        #expect(vmpl.status != 0)
        #expect(
            vmpl.output.contains("verification failed at policy (VMPL)")
                && vmpl.output.contains("refused by default, --max-vmpl N accepts it"),
            "\(vmpl.output)"
        )
        #expect(try Fixtures.run(cli, vlek + ["--max-vmpl", "1"]).status == 0)
    }
}

@Suite("Main job: remote attestation of the hello enclave")
struct HelloAttestationTests {
    /// HelloHost --attest: a service in process, a challenge, an enclave-made key bound into the evidence, a token
    /// verified as a relying party would, and the replayed evidence refused.
    @Test func helloHostAttestsThroughTheService() throws {
        let signed = try Fixtures.sign("HelloEnclave")
        let data = (signed.signature as NSString).deletingLastPathComponent + "/attestation"
        let run = try Fixtures.run(
            Fixtures.product("HelloHost"),
            ["--enclave", signed.image, "--signature", signed.signature, "--attest", "--data-dir", data]
        )
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("x-ms-sgx-mrenclave: \(signed.identity.uniqueID.hex)"), "\(run.output)")
        #expect(run.output.contains("x-enclavekit-challenge: "), "\(run.output)")
        #expect(run.output.contains("x-ms-runtime.keys: {\"crv\":\"P-256\""), "\(run.output)")
        #expect(run.output.contains("replay refused: InvalidChallenge"), "\(run.output)")
        // The sample checks locally with the service's verifier first.
        #expect(run.output.contains("==> verified locally: MRENCLAVE"), "\(run.output)")
    }
}

@Suite("enclave serve attestation, attest, token verify")
struct ServeCLITests {
    let cli = Fixtures.product("enclave")

    /// The service as a process, over HTTPS with the self-signed certificate it creates on first start: evidence
    /// attested with the CLI trusting that certificate, the token verified with the CLI pinning its SHA-256, a
    /// refusal named, and SIGTERM shutting it down cleanly.
    @Test func serveAttestVerifyAndStop() throws {
        _ = Fixtures.platformDirectory
        let signed = try Fixtures.sign("HelloEnclave")
        let work = (signed.signature as NSString).deletingLastPathComponent
        let evidence = work + "/serve-evidence.bin"
        let made = try Fixtures.run(
            Fixtures.product("HelloHost"),
            ["--enclave", signed.image, "--signature", signed.signature, "--evidence", evidence, "--nonce", "0a0b0c"]
        )
        #expect(made.status == 0, "\(made.output)")
        try Data([0x0A, 0x0B, 0x0C]).write(to: URL(fileURLWithPath: work + "/nonce.bin"))

        let server = Process()
        // Under the most permissive umask (set in the child only: umask is per process, and other tests create
        // files meanwhile), everything the service creates must still be private, and missing parents not writable.
        let parents = work + "/umask-\(UUID().uuidString)"
        let dataDirectory = parents + "/a/service"
        server.executableURL = URL(fileURLWithPath: "/bin/sh")
        server.arguments = [
            "-c", "umask 000; exec \"$0\" \"$@\"", cli,
            "serve", "attestation", "--port", "0", "--data-dir", dataDirectory, "--allow-simulated",
        ]
        let log = Pipe()
        server.standardOutput = log
        server.standardError = log
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        var port: String?
        var seen = ""
        let deadline = Date().addingTimeInterval(30)
        while port == nil, Date() < deadline {
            let chunk = log.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let range = seen.range(of: #"port=(\d+)"#, options: .regularExpression) {
                port = String(seen[range].dropFirst(5))
            }
        }
        let service = "https://127.0.0.1:" + (try #require(port, "\(seen)"))
        let fingerprintLine = try #require(
            seen.range(of: #"TLS certificate SHA-256 fingerprint: [0-9a-f]{64}"#, options: .regularExpression),
            "\(seen)"
        )
        let fingerprint = String(seen[fingerprintLine].suffix(64))
        let certificate = dataDirectory + "/tls/certificate.pem"
        let key = dataDirectory + "/tls/private-key.pem"
        #expect(try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int == 0o600)
        func mode(_ path: String) -> Int? {
            (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
        }
        #expect(mode(dataDirectory) == 0o700)
        #expect(mode(parents) == 0o755)
        #expect(mode(parents + "/a") == 0o755)
        #expect(mode(dataDirectory + "/tls") == 0o700)
        #expect(mode(dataDirectory + "/admin-token") == 0o600)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory)) ?? []
        for file in files where file != "tls" {
            #expect(mode(dataDirectory + "/" + file) == 0o600, "\(file) under umask 000")
        }

        // Without trusting the self-signed certificate the CLI refuses the service.
        let untrusted = try Fixtures.run(
            cli,
            ["attest", "--service", service, evidence, "--runtime-data", work + "/nonce.bin"]
        )
        #expect(untrusted.status != 0)
        #expect(untrusted.output.contains("CertificateNotTrusted"), "\(untrusted.output)")

        let attest = try Fixtures.run(
            cli,
            ["attest", "--service", service, "--ca-cert", certificate, evidence, "--runtime-data", work + "/nonce.bin"]
        )
        #expect(attest.status == 0, "\(attest.output)")
        let token = attest.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3)
        let verified = try Fixtures.run(
            cli,
            ["token", "verify", "--service", service, "--pin-sha256", fingerprint, token]
        )
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.contains("x-ms-sgx-mrenclave: \(signed.identity.uniqueID.hex)"), "\(verified.output)")
        let tampered = try Fixtures.run(
            cli,
            ["token", "verify", "--service", service, "--ca-cert", certificate, String(token.dropLast(3)) + "AAA"]
        )
        #expect(tampered.status != 0)
        #expect(tampered.output.contains("the signature does not verify"), "\(tampered.output)")
        let unbound = try Fixtures.run(
            cli,
            ["attest", "--service", service, "--ca-cert", certificate, evidence, "--runtime-data", signed.signature]
        )
        #expect(unbound.status != 0)
        #expect(unbound.output.contains("RuntimeDataNotBound"), "\(unbound.output)")

        server.terminate()  // SIGTERM: graceful shutdown
        server.waitUntilExit()
        #expect(server.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: dataDirectory + "/attestation.sqlite"))
    }

    /// Plain HTTP needs --insecure-http and loopback; a data directory others can write into is refused; a database
    /// password on the command line (visible in `ps`) is refused.
    @Test func serveRefusesInsecureSetups() throws {
        let work = try Fixtures.temporaryDirectory()
        let exposed = try Fixtures.run(
            cli,
            ["serve", "attestation", "--insecure-http", "--host", "0.0.0.0", "--port", "0", "--data-dir", work + "/a"]
        )
        #expect(exposed.status != 0)
        #expect(exposed.output.contains("allowed only on loopback"), "\(exposed.output)")

        try FileManager.default.createDirectory(atPath: work + "/shared", withIntermediateDirectories: false)
        #expect(chmod(work + "/shared", 0o777) == 0)
        let shared = try Fixtures.run(cli, ["serve", "attestation", "--port", "0", "--data-dir", work + "/shared"])
        #expect(shared.status != 0)
        #expect(shared.output.contains("\(work)/shared has mode 0777"), "\(shared.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/shared/tls/private-key.pem"))

        let password = try Fixtures.run(
            cli,
            ["serve", "attestation", "--database", "postgres://u:hunter2@127.0.0.1:1/db", "--data-dir", work + "/b"]
        )
        #expect(password.status != 0)
        #expect(password.output.contains("--database-password-file"), "\(password.output)")

        let passwordFile = work + "/pgpass"
        try Data("hunter2\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        #expect(chmod(passwordFile, 0o644) == 0)
        let readable = try Fixtures.run(
            cli,
            [
                "serve", "attestation", "--database", "postgres://u@127.0.0.1:1/db", "--database-password-file",
                passwordFile, "--data-dir", work + "/c",
            ]
        )
        #expect(readable.status != 0)
        #expect(readable.output.contains("others may read it"), "\(readable.output)")
    }
}

@Suite("enclave verify: real TDX and SEV-SNP evidence")
struct VerifyRealEvidenceCLITests {
    let cli = Fixtures.product("enclave")

    /// The JSON document printed before any error line.
    func json(_ output: String) throws -> [String: Any] {
        let start = output.firstIndex(of: "{") ?? output.startIndex
        let end = output.lastIndex(of: "}").map { output.index(after: $0) } ?? output.endIndex
        let document = String(output[start..<end])
        return try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
    }

    @Test func tdxQuoteIsDetectedAndPrintsItsClaimsAndStatus() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/tdx/phala-dcap-qvl/tdx_quote", "--collateral",
                Vectors.root + "/tdx/phala-dcap-qvl/tdx_quote_collateral.json", "--at", "1752919234", "--json",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let claims = try json(run.output)
        #expect(claims["format"] as? String == "tdx")
        #expect(claims["tcbStatus"] as? String == "UpToDate")
        let tdx = try #require(claims["tdx"] as? [String: Any])
        for key in [
            "mrTD", "rtmr0", "rtmr3", "mrSeam", "mrSignerSeam", "mrOwner", "mrConfigID", "mrOwnerConfig",
            "tdAttributes", "xfam", "teeTCBSVN", "septVEDisable",
        ] {
            #expect(tdx[key] != nil, "missing tdx.\(key)")
        }
        #expect((tdx["mrTD"] as? String)?.hasPrefix("91eb2b44") == true)
    }

    @Test func hexQuoteAndPCCSDirectoryFailAtTheTCBLevel() throws {
        let hex = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/tdx/phala-dcap-qvl/tdx-quote.hex", "--collateral",
                Vectors.root + "/tdx/phala-dcap-qvl/tdx_quote_collateral.json", "--at", "1752919234",
            ]
        )
        #expect(hex.status != 0)
        #expect(hex.output.contains("verification failed at TCB level: no matching TCB level"), "\(hex.output)")
        // go-tdx-guest's PCS responses as a directory; its test quote without the appended test bytes.
        let quote = try Vectors.bytes("tdx/google-go-tdx-guest/tdx_prod_quote_SPR_E4.dat")
        let path = NSTemporaryDirectory() + "spr-\(UUID().uuidString).dat"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(quote.prefix(4935)).write(to: URL(fileURLWithPath: path))
        let pccs = try Fixtures.run(
            cli,
            ["verify", path, "--collateral", Vectors.root + "/tdx/google-go-tdx-guest", "--at", "1688173200"]
        )
        #expect(pccs.status != 0)
        #expect(pccs.output.contains("verification failed at TCB level"), "\(pccs.output)")
    }

    @Test func policyRefusalPrintsTheVerifiedClaimsAndNamesTheRequirement() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin", "--at", "1752919234",
                "--chain-only", "--json",
            ]
        )
        #expect(run.status != 0)
        #expect(run.output.contains("verification failed at policy (SEPT_VE_DISABLE)"), "\(run.output)")
        #expect(run.output.contains("refused by default, --allow-sept-ve accepts it"), "\(run.output)")
        let claims = try json(run.output)
        #expect(claims["verified"] as? String == "chain-only")
        let policy = try #require(claims["policy"] as? [String: Any])
        #expect(policy["accepted"] as? Bool == false)
        #expect(policy["default"] as? Bool == true && policy["flag"] as? String == "--allow-sept-ve")
        let allowed = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin", "--at", "1752919234",
                "--allow-sept-ve", "--chain-only",
            ]
        )
        #expect(allowed.status == 0, "\(allowed.output)")
    }

    /// Azure TDX vTPM evidence carries a TD quote but no collateral: refused, naming the flags; --chain-only accepts
    /// it (its TD lacks SEPT_VE_DISABLE, so --allow-sept-ve too) and says what was not checked.
    @Test func azureTDXVTPMEvidenceNeedsCollateralOrChainOnly() throws {
        let path = Vectors.root + "/azure-vtpm/trustee-az-tdx-vtpm/evidence-v1.json"
        let refused = try Fixtures.run(cli, ["verify", path, "--at", "1752919234"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("verification failed at collateral"), "\(refused.output)")
        #expect(refused.output.contains("--chain-only"), "\(refused.output)")
        let run = try Fixtures.run(
            cli,
            ["verify", path, "--at", "1752919234", "--chain-only", "--allow-sept-ve", "--json"]
        )
        #expect(run.status == 0, "\(run.output)")
        #expect(try json(run.output)["notChecked"] as? [String] == ["revocation", "TCB"])
        #expect(run.output.contains("revocation and TCB were not checked"), "\(run.output)")
    }

    @Test func azureVTPMEvidenceIsDetectedAndPrintsTheTPMClaims() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/azure-vtpm/trustee-az-snp-vtpm/evidence-v1.json", "--at", "1752919234",
                "--json",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let claims = try json(run.output)
        #expect(claims["format"] as? String == "sev-snp")
        let tpm = try #require(claims["tpm"] as? [String: Any])
        #expect(tpm["nonce"] as? String == Hex.encode(Array("challenge".utf8)))
        #expect((tpm["pcrs"] as? [String])?.count == 24)
    }

    @Test func sevSNPReportWithVCEKPrintsItsClaims() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/snp/trustee/test-report.bin", "--format", "sev-snp", "--vcek",
                Vectors.root + "/snp/trustee/test-vcek.der", "--at", "1752919234", "--json",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let claims = try json(run.output)
        #expect(claims["format"] as? String == "sev-snp")
        let snp = try #require(claims["sevSnp"] as? [String: Any])
        for key in [
            "measurement", "hostData", "familyID", "imageID", "guestSVN", "policy", "platformInfo", "vmpl",
            "reportedTCB", "committedTCB", "currentTCB", "chipID",
        ] {
            #expect(snp[key] != nil, "missing sevSnp.\(key)")
        }
        #expect(snp["productName"] as? String == "Milan")
        #expect((snp["reportedTCB"] as? [String: Any])?["microcode"] as? Int == 115)

        // With the chain file and a hex report too; a tampered report names the check.
        let hex = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/snp/virtee-sev/report_milan.hex", "--format", "sev-snp", "--vcek",
                Vectors.root + "/snp/virtee-sev/vcek_milan.der", "--chain",
                Vectors.root + "/snp/virtee-sev/cert_chain_milan",
                "--at", "1752919234",
            ]
        )
        #expect(hex.status == 0, "\(hex.output)")
        var bytes = try Vectors.bytes("snp/trustee/test-report.bin")
        bytes[42] &+= 1
        let path = NSTemporaryDirectory() + "snp-\(UUID().uuidString).bin"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let tampered = try Fixtures.run(
            cli,
            ["verify", path, "--vcek", Vectors.root + "/snp/trustee/test-vcek.der", "--at", "1752919234"]
        )
        #expect(tampered.status != 0)
        #expect(tampered.output.contains("verification failed at report signature"), "\(tampered.output)")
        let missing = try Fixtures.run(cli, ["verify", path, "--format", "sev-snp"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("--vcek"), "\(missing.output)")
    }
}

/// The real-evidence test vectors in Tests/Vectors (public data; provenance in its MANIFEST).
enum Vectors {
    static let root: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors").path
    }()

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + path)))
    }
}
