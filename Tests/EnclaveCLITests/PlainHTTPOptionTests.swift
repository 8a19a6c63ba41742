import Foundation
import TestSupport
import Testing

/// `--attestation` (keys import, verify-broker) and `--service` (attest, token verify, policy) over plain HTTP only to
/// a loopback service, as `--broker` already is: over the network an attacker answers for the service, vouches for a
/// broker whose evidence binds its own import key, or signs tokens that would verify. Refused by name while the
/// options are checked, before any connection (192.0.2.1 is TEST-NET-1).
@Suite("enclave CLI: http:// options only to loopback")
struct PlainHTTPOptionTests {
    func refused(_ arguments: [String], naming text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let started = ContinuousClock.now
        let result = try Fixtures.run(ChildProcess.cli, arguments)
        #expect(result.status != 0, "\(arguments) succeeded: \(result.output)", sourceLocation: sourceLocation)
        #expect(result.output.contains(text), "\(result.output)", sourceLocation: sourceLocation)
        #expect(ContinuousClock.now - started < .seconds(8), "it tried to connect", sourceLocation: sourceLocation)
    }

    @Test func keysImportRefusesARemotePlainHTTPAttestationService() throws {
        let directory = try Fixtures.temporaryDirectory()
        let keyFile = directory + "/key.bin"
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: keyFile))
        try refused(
            [
                "keys", "import", "owner-key", "--key-file", keyFile, "--broker", "http://127.0.0.1:1",
                "--broker-data-dir", directory, "--broker-signer", String(repeating: "5a", count: 32),
                "--broker-product", "1", "--attestation", "http://192.0.2.1:8080",
            ],
            naming: "--attestation over http:// only to a loopback service"
        )
        try refused(
            [
                "keys", "verify-broker", "--broker", "http://127.0.0.1:1", "--broker-data-dir", directory,
                "--broker-signer", String(repeating: "5a", count: 32), "--broker-product", "1",
                "--attestation", "http://192.0.2.1:8080",
            ],
            naming: "--attestation over http:// only to a loopback service"
        )
    }

    @Test func tokenVerifyAndAttestRefuseARemotePlainHTTPService() throws {
        let directory = try Fixtures.temporaryDirectory()
        let evidence = directory + "/evidence.bin"
        try Data(repeating: 1, count: 64).write(to: URL(fileURLWithPath: evidence))
        try refused(
            ["token", "verify", "--service", "http://192.0.2.1:8080", "a.b.c"],
            naming: "--service over http:// only to a loopback service"
        )
        try refused(
            ["attest", "--service", "http://192.0.2.1:8080", evidence],
            naming: "--service over http:// only to a loopback service"
        )
    }
}
