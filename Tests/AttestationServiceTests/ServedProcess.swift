import Foundation
import Testing

/// `enclave serve attestation` run as a process, as an operator runs it: started with the given arguments, its log
/// read until it names the port it bound (30 s at most), terminated when the value is no longer needed.
final class ServedProcess {
    let process = Process()
    let log = Pipe()
    /// The port the service bound.
    private(set) var port = ""
    /// Everything the service printed up to the port line.
    private(set) var output = ""

    /// Starts `enclave serve attestation ARGUMENTS` (the `enclave` beside the test bundle) with `environment` added.
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: TrustHardeningTests.cli),
            "no enclave executable at \(TrustHardeningTests.cli)"
        )
        process.executableURL = URL(fileURLWithPath: TrustHardeningTests.cli)
        process.arguments = ["serve", "attestation", "--port", "0"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var bound: String?
        while bound == nil, Date() < deadline {
            let chunk = log.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output += String(decoding: chunk, as: UTF8.self)
            if let range = output.range(of: #"port=(\d+)"#, options: .regularExpression) {
                bound = String(output[range].dropFirst(5))
            }
        }
        guard let bound else {
            process.terminate()
            throw ServedProcessError(output: output)
        }
        port = bound
    }

    /// `http://127.0.0.1:PORT` (the tests serve with `--insecure-http`).
    var base: String { "http://127.0.0.1:" + port }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// The service exited or stayed silent before naming its port.
struct ServedProcessError: Error, CustomStringConvertible {
    let output: String
    var description: String { "the service named no port; it printed: \(output)" }
}
