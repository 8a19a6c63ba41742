import Crypto
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

    /// ``Nothing`` under another name, which the benchmark host makes switchless.
    enum SwitchlessNothing: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.switchless.empty" }
    }

    /// ``Bytes`` under another name, which the benchmark host makes switchless.
    enum SwitchlessBytes: EnclaveCall {
        typealias Input = [UInt8]
        typealias Output = Empty
        static var name: String { "bench.switchless.bytes" }
    }

    /// A switchless ECALL that makes one switchless OCALL (``SwitchlessHostNothing``).
    enum SwitchlessWithOCall: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.switchless.withOCall" }
    }

    /// ``HostNothing`` under another name, which the benchmark host makes a switchless OCALL.
    enum SwitchlessHostNothing: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.switchless.host.empty" }
    }

    enum WithOCall: EnclaveCall {
        typealias Input = Empty
        typealias Output = Empty
        static var name: String { "bench.withOCall" }
    }

    struct SealRun: Codable, Sendable {
        enum Mode: String, Codable, Sendable { case rawGCM, sealBlob, sealStream }
        var mode: Mode
        var size: Int
        var iterations: Int
    }

    /// Seal inside the enclave `iterations` times; answers the seconds it took (no call overhead included).
    enum Seal: EnclaveCall {
        typealias Input = SealRun
        typealias Output = Double
        static var name: String { "bench.seal" }
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
        calls.register(BenchCalls.SwitchlessNothing.self) { _ in Empty() }
        calls.register(BenchCalls.SwitchlessBytes.self) { _ in Empty() }
        calls.register(BenchCalls.SwitchlessWithOCall.self) { _ in
            try await context.ocall(BenchCalls.SwitchlessHostNothing.self, Empty())
        }
        calls.register(BenchCalls.WithOCall.self) { _ in try await context.ocall(BenchCalls.HostNothing.self, Empty()) }
        calls.register(BenchCalls.Seal.self) { run in try await Self.seal(run, context: context) }
    }

    static func seal(_ run: BenchCalls.SealRun, context: EnclaveContext) async throws -> Double {
        guard run.size > 0, run.size <= 1 << 30, run.iterations > 0 else {
            throw EnclaveError.malformedInput("bad benchmark parameters")
        }
        let clock = ContinuousClock()
        switch run.mode {
        case .rawGCM:
            // Large sizes are sealed in 1 MiB pieces, as the stream does, so both touch the same memory.
            let piece = min(run.size, 1 << 20)
            let data = [UInt8](repeating: 0x33, count: piece)
            let key = SymmetricKey(size: .bits256)
            let start = clock.now
            for _ in 0..<run.iterations {
                for _ in 0..<(run.size / piece) { _ = try AES.GCM.seal(data, using: key) }
            }
            return seconds(clock.now - start)
        case .sealBlob:
            let data = [UInt8](repeating: 0x33, count: run.size)
            // Fetch the key root once, as any long-lived enclave has.
            _ = try await context.seal([1], policy: .signerID)
            let start = clock.now
            for _ in 0..<run.iterations { _ = try await context.seal(data, policy: .signerID) }
            return seconds(clock.now - start)
        case .sealStream:
            let piece = [UInt8](repeating: 0x33, count: 1 << 20)
            let start = clock.now
            for _ in 0..<run.iterations {
                var writer = try await context.sealStream(policy: .signerID)
                var produced = writer.header.count
                var remaining = run.size
                while remaining > 0 {
                    let count = min(remaining, piece.count)
                    produced += try writer.write(count == piece.count ? piece : Array(piece[..<count])).count
                    remaining -= count
                }
                produced += try writer.finish().count
                precondition(produced > run.size)
            }
            return seconds(clock.now - start)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
