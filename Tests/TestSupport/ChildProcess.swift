import Foundation

/// Runs the package's executables (and other programs) from tests: to completion with their combined output, or
/// as a long-running server (``ServedProcess``).
public enum ChildProcess {
    /// The directory holding the package's built executables (beside the test bundle).
    public static let buildDirectory: String = {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
    }()

    /// The path of the built product `name` (`enclave`, `TestEnclave`, `HelloHost`, …).
    public static func product(_ name: String) -> String { buildDirectory + "/" + name }

    /// The `enclave` executable beside the test bundle.
    public static var cli: String { product("enclave") }

    /// Run `executable` with `arguments` to completion, `input` on its standard input (closed after), `environment`
    /// added to this process's.
    /// - Returns: the exit status and combined output.
    /// - Throws: when the program cannot be started.
    @discardableResult
    public static func run(
        _ executable: String,
        _ arguments: [String],
        input: String? = nil,
        environment: [String: String] = [:],
        currentDirectory: String? = nil
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
