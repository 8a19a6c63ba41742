import ArgumentParser
import EnclaveRuntime
import Foundation

/// Entry point: the CLI, or — when the loader starts this executable for `enclave bench` — the benchmark enclave.
@main
enum Main {
    static func main() async {
        if CommandLine.arguments.dropFirst().first == BenchEnclave.launchArgument {
            await EnclaveRuntime.run(BenchEnclave.self)
        }
        exit(await run(Array(CommandLine.arguments.dropFirst())))
    }

    /// Parse and run the command; the exit status (``ExitStatus``). A usage error found while parsing prints
    /// ArgumentParser's message and usage footer (64), `--help` the help (0); an error while running prints one line
    /// without the footer.
    static func run(_ arguments: [String]) async -> Int32 {
        var command: any ParsableCommand
        do {
            command = try EnclaveCommand.parseAsRoot(arguments)
        } catch {
            EnclaveCommand.exit(withError: error)
        }
        do {
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            return ExitStatus.success
        } catch {
            // Help (`enclave serve`, `enclave help serve`, `… --help`) comes as an error of ArgumentParser's own:
            // ArgumentParser prints it, as it does its other errors.
            if ExitStatus.isArgumentParserOwn(error) { EnclaveCommand.exit(withError: error) }
            let (message, status) = ExitStatus.report(error)
            if let message { FileHandle.standardError.write(Data("Error: \(message)\n".utf8)) }
            return status
        }
    }
}
