public import Foundation

/// `enclave serve attestation` run as a process, as an operator runs it: started with the given arguments, its log
/// read until it names the port it bound (120 s at most), terminated when the value is no longer needed.
public final class ServedProcess {
    /// The running service.
    public let process = Process()
    /// Its standard output and error.
    public let log = Pipe()
    /// The port the service bound.
    public private(set) var port = ""
    /// Everything the service printed up to the port line.
    public private(set) var output = ""

    /// Starts `enclave serve attestation ARGUMENTS` (the `enclave` beside the test bundle) with `environment` added;
    /// `service` names another `serve` sub-command (`keybroker`).
    public init(_ arguments: [String], environment: [String: String] = [:], service: String = "attestation") throws {
        guard FileManager.default.isExecutableFile(atPath: ChildProcess.cli) else {
            throw ServedProcessError(output: "no enclave executable at \(ChildProcess.cli)")
        }
        process.executableURL = URL(fileURLWithPath: ChildProcess.cli)
        process.arguments = ["serve", service, "--port", "0"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(120)  // the port line ends the wait; a loaded CI machine starts slowly
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
    public var base: String { "http://127.0.0.1:" + port }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// The service exited or stayed silent before naming its port.
public struct ServedProcessError: Error, CustomStringConvertible {
    /// What it printed.
    public let output: String
    public var description: String { "the service named no port; it printed: \(output)" }
}
