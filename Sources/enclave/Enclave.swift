import ArgumentParser

/// The EnclaveKit command-line tool.
struct EnclaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enclave",
        abstract: "Sign, inspect, run and benchmark EnclaveKit enclaves.",
        subcommands: [
            Keygen.self, Sign.self, Dump.self, Verify.self, Platform.self, Serve.self, Attest.self, Token.self,
            Bench.self, Policy.self, CleanRoomCLI.self, Keys.self,
        ]
    )
}
