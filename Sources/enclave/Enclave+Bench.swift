import ArgumentParser
extension EnclaveCommand {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Benchmarks.")
    }
}
