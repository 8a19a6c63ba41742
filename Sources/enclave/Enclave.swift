import ArgumentParser
import EnclaveRuntime

/// The EnclaveKit command-line tool.
struct EnclaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enclave",
        abstract: "Sign, inspect, run and benchmark EnclaveKit enclaves.",
        subcommands: [
            Keygen.self, Sign.self, Dump.self, Verify.self, Platform.self, Serve.self, Attest.self, Token.self,
            Bench.self, Policy.self,
        ]
    )
}

/// Entry point: the CLI, or — when the loader starts this executable for `enclave bench` — the benchmark enclave.
@main
enum Main {
    static func main() async {
        if CommandLine.arguments.dropFirst().first == BenchEnclave.launchArgument {
            await EnclaveRuntime.run(BenchEnclave.self)
        }
        await EnclaveCommand.main()
    }
}
