import EnclaveCore
import EnclaveRuntime

/// Calls of the benchmark enclave: the `enclave` executable itself, started by the loader with
/// ``BenchEnclave/launchArgument``.
enum BenchCalls {
    enum Nothing: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.empty" }
    }

    enum Bytes: EnclaveCall {
        typealias Input = [UInt8]
        typealias Output = Empty
        static var name: String { "bench.bytes" }
    }

    enum WithOCall: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.withOCall" }
    }

    enum HostNothing: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.host.empty" }
    }
}

/// The enclave side of `enclave bench calls`.
struct BenchEnclave: EnclaveApplication {
    static let launchArgument = "__enclavekit-bench-enclave"
    let context: EnclaveContext

    init(context: EnclaveContext) { self.context = context }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(BenchCalls.Nothing.self) { _ in Empty() }
        calls.register(BenchCalls.Bytes.self) { _ in Empty() }
        calls.register(BenchCalls.WithOCall.self) { _ in try await context.ocall(BenchCalls.HostNothing.self, Empty()) }
    }
}
