import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--attestation` (keys import, verify-broker) and `--service` (attest, token verify, policy) over plain HTTP only to
/// a loopback service, as `--broker` already is: over the network an attacker answers for the service, vouches for a
/// broker whose evidence binds its own import key, or signs tokens that would verify. Refused by name while the
/// options are checked, before any connection: the service named is a ``Tripwire`` (127.0.0.2, not on the loopback
/// list), whose backlog would hold a connection, counted after the command exits.
@Suite("enclave CLI: http:// options only to loopback")
struct PlainHTTPOptionTests {
    func refused(
        _ arguments: [String],
        naming text: String,
        tripwire: Tripwire,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let result = try Fixtures.run(ChildProcess.cli, arguments)
        #expect(result.status != 0, "\(arguments) succeeded: \(result.output)", sourceLocation: sourceLocation)
        #expect(result.output.contains(text), "\(result.output)", sourceLocation: sourceLocation)
        #expect(tripwire.attempts() == 0, "it connected to \(tripwire.url)", sourceLocation: sourceLocation)
    }

    /// The tripwire counts a connection (so that no count above means none was made).
    @Test func theTripwireCountsAConnection() throws {
        let tripwire = try Tripwire()
        #expect(tripwire.attempts() == 0)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(tripwire.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.2")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0, "errno \(errno)")
        #expect(tripwire.attempts() == 1)
        #expect(tripwire.attempts() == 0)
    }

    @Test func keysImportRefusesARemotePlainHTTPAttestationService() throws {
        let directory = try Fixtures.temporaryDirectory()
        let tripwire = try Tripwire()
        let keyFile = directory + "/key.bin"
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: keyFile))
        try refused(
            [
                "keys", "import", "owner-key", "--key-file", keyFile, "--broker", "http://127.0.0.1:1",
                "--broker-data-dir", directory, "--broker-signer", String(repeating: "5a", count: 32),
                "--broker-product", "1", "--attestation", tripwire.url,
            ],
            naming: "--attestation over http:// only to a loopback service",
            tripwire: tripwire
        )
        try refused(
            [
                "keys", "verify-broker", "--broker", "http://127.0.0.1:1", "--broker-data-dir", directory,
                "--broker-signer", String(repeating: "5a", count: 32), "--broker-product", "1",
                "--attestation", tripwire.url,
            ],
            naming: "--attestation over http:// only to a loopback service",
            tripwire: tripwire
        )
    }

    @Test func tokenVerifyAndAttestRefuseARemotePlainHTTPService() throws {
        let directory = try Fixtures.temporaryDirectory()
        let tripwire = try Tripwire()
        let evidence = directory + "/evidence.bin"
        try Data(repeating: 1, count: 64).write(to: URL(fileURLWithPath: evidence))
        try refused(
            ["token", "verify", "--service", tripwire.url, "a.b.c"],
            naming: "--service over http:// only to a loopback service",
            tripwire: tripwire
        )
        try refused(
            ["attest", "--service", tripwire.url, evidence],
            naming: "--service over http:// only to a loopback service",
            tripwire: tripwire
        )
    }
}
