import Foundation
import TestSupport
import Testing

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
        let deadline = Date().addingTimeInterval(120)  // the port line ends the wait; a loaded CI machine starts slowly
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
