import Foundation
import TestSupport
import Testing

/// `enclave cleanroom serve --min-upload-rate-kib`: the rate an upload must keep up past the 30 s body deadline
/// (`ConnectionLimits.minimumBodyRate`, 1 MiB/s by default), which existed only in code (review 5). Bad values are
/// usage errors naming the range; a good one is what the server runs with, as it says when it starts.
@Suite("enclave cleanroom serve: the upload rate option")
struct CleanRoomServeOptionsTests {
    let cli = Fixtures.product("enclave")

    @Test func badRatesAreRefusedByName() throws {
        let directory = try Fixtures.temporaryDirectory("upload-rate")
        for value in ["0", "-1", "1048577", "fast"] {
            let run = try Fixtures.run(
                cli,
                [
                    "cleanroom", "serve", "--insecure-http", "--port", "0", "--data-dir", directory + "/never",
                    "--min-upload-rate-kib=\(value)",
                ]
            )
            #expect(run.status == 64, "\(value): \(run.output)")
            #expect(run.output.contains("--min-upload-rate-kib"), "\(value): \(run.output)")
            if value != "fast" {
                #expect(run.output.contains("between 1 and 1048576"), "\(value): \(run.output)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/never"))
    }

    /// The host started with 64 KiB/s (and, for comparison, the default) names the rate its server applies, read
    /// from the limits it serves with. Key release is off (no local services' certificates in a fresh data home).
    @Test func theRateReachesTheServer() throws {
        let signed = try Fixtures.sign("CleanRoomEnclave")
        let home = try Fixtures.temporaryDirectory("upload-rate-home")
        for (arguments, expected) in [
            (["--min-upload-rate-kib", "64"], "Uploads: 30 s for a body, then at least 64 KiB/s"),
            ([], "Uploads: 30 s for a body, then at least 1024 KiB/s"),
        ] {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: cli)
            server.arguments =
                [
                    "cleanroom", "serve", "--insecure-http", "--port", "0", "--data-dir",
                    home + "/cleanroom-\(UUID().uuidString)", "--enclave", signed.image, "--enclave-signature",
                    signed.signature,
                ] + arguments
            _ = Fixtures.platformDirectory
            server.environment = ProcessInfo.processInfo.environment.merging(["XDG_DATA_HOME": home]) { $1 }
            let log = Pipe()
            server.standardOutput = log
            server.standardError = log
            try server.run()
            defer { if server.isRunning { server.terminate() } }
            var seen = ""
            let deadline = Date().addingTimeInterval(120)  // the host line ends the wait; a loaded machine is slow
            while !seen.contains("Clean room host on"), Date() < deadline {
                let chunk = log.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            #expect(seen.contains("Clean room host on http://127.0.0.1:"), "\(seen)")
            #expect(seen.contains(expected), "\(seen)")
            server.terminate()
            server.waitUntilExit()
        }
    }
}
