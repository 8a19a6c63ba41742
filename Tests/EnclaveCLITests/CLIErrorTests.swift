import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How `enclave` fails: usage errors found while parsing print the usage footer and exit 64; an error while running
/// prints one line (`Error: …`) and no footer; verification refusals keep 1, 2, 3; runtime failures (a port in use,
/// an unreachable service) exit 70.
@Suite("enclave CLI: errors and exit statuses")
struct CLIErrorTests {
    let cli = Fixtures.product("enclave")

    /// Run `enclave` with a deadline (a server that started by mistake must not hang the test); status and output.
    func run(_ arguments: [String], seconds: TimeInterval = 60) throws -> (status: Int32, output: String) {
        let log = NSTemporaryDirectory() + "enclave-cli-error-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cli)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            process.waitUntilExit()
        }
        try handle.close()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        if timedOut { Issue.record("enclave \(arguments) still ran after \(seconds) s: \(output)") }
        return (process.terminationStatus, output)
    }

    /// A listening TCP socket on 127.0.0.1 at a free port, and the port.
    static func listeningSocket() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && listen(descriptor, 8) == 0
                    && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        try #require(bound, "cannot listen on 127.0.0.1: errno \(errno)")
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func unknownOptionIsAUsageErrorWithTheFooter() throws {
        let result = try run(["verify", "--no-such-option", "evidence.bin"])
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.contains("Usage: enclave verify"), "\(result.output)")
    }

    @Test func invalidOptionValueIsAUsageErrorWithTheFooter() throws {
        let result = try run(["verify", "evidence.bin", "--max-vmpl", "9"])
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.contains("--max-vmpl is 0 to 3"), "\(result.output)")
        #expect(result.output.contains("Usage:"), "\(result.output)")
    }

    @Test func helpExitsZero() throws {
        let result = try run(["serve", "attestation", "--help"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("--port"), "\(result.output)")
    }

    /// A file named on the command line that cannot be read: a usage matter (64), found while running, so one line
    /// and no footer.
    @Test func unreadableFileIsOneLineWithoutTheFooter() throws {
        let directory = try Fixtures.temporaryDirectory()
        let result = try run([
            "sign", "--key", directory + "/missing.pem", "--config", directory + "/missing.json",
            directory + "/missing-image",
        ])
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.hasPrefix("Error: "), "\(result.output)")
        #expect(result.output.contains("missing.json"), "\(result.output)")
        #expect(!result.output.contains("Usage:"), "\(result.output)")
        #expect(result.output.split(separator: "\n").count == 1, "\(result.output)")
    }

    /// Evidence that does not verify keeps its own status (1), printed as the failed check, without the footer.
    @Test func verificationRefusalKeepsItsStatusWithoutTheFooter() throws {
        let result = try run([
            "verify", Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote", "--collateral",
            Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote_collateral.json", "--at", "1752919278",
        ])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("verification failed at collateral validity"), "\(result.output)")
        #expect(!result.output.contains("Usage:"), "\(result.output)")
    }

    /// A service that cannot be reached is a runtime failure (70), not a refusal of the evidence (1).
    @Test func unreachableServiceIsARuntimeFailure() throws {
        let (descriptor, port) = try Self.listeningSocket()
        close(descriptor)  // now nothing listens there
        let directory = try Fixtures.temporaryDirectory()
        let evidence = directory + "/evidence.bin"
        try Data(repeating: 1, count: 64).write(to: URL(fileURLWithPath: evidence))
        let result = try run(["attest", "--service", "http://127.0.0.1:\(port)", evidence])
        #expect(result.status == 70, "\(result.output)")
        #expect(result.output.hasPrefix("Error: "), "\(result.output)")
        #expect(result.output.contains("Unreachable"), "\(result.output)")
        #expect(!result.output.contains("Usage:"), "\(result.output)")
    }

    /// `serve attestation --port N` with N taken: one clean line naming the port and what to do, exit 70 — not
    /// NIO's `bind(descriptor:ptr:bytes:)` text, not a trap or a backtrace (this runs the debug build).
    @Test func portInUseIsOneCleanLine() throws {
        let (descriptor, port) = try Self.listeningSocket()
        defer { close(descriptor) }
        let directory = try Fixtures.temporaryDirectory()
        for transport in [["--insecure-http"], []] {
            let result = try run(
                ["serve", "attestation", "--port", "\(port)", "--data-dir", directory + "/data"] + transport
            )
            #expect(result.status == 70, "\(transport): \(result.output)")
            let errors = result.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
            #expect(
                errors == [
                    "Error: cannot listen on 127.0.0.1:\(port): the port is in use by another process (choose "
                        + "another --port, or --port 0 for any free port)"
                ],
                "\(transport): \(result.output)"
            )
            #expect(!result.output.contains("bind(descriptor"), "\(result.output)")
            #expect(!result.output.contains("Fatal error"), "\(result.output)")
            #expect(!result.output.contains("Usage:"), "\(result.output)")
        }
    }
}
