import ArgumentParser

/// The EnclaveKit command-line tool.
@main
struct EnclaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enclave",
        abstract: "Sign, inspect, run and benchmark EnclaveKit enclaves.",
        subcommands: [Keygen.self, Sign.self, Dump.self, Bench.self]
    )
}
