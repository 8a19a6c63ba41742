import EnclaveCore
import EnclaveHost
import Foundation

extension EnclaveCommand.Bench.Calls {
    /// Context switches per call on each side: every thread of the host process and of the enclave process, over
    /// `count` calls of `operation` made back to back. Load-independent where wall-clock figures are not: a raw
    /// socket round trip costs one switch per side (each side blocks once in `read`).
    struct Switches {
        var host: Double
        var enclave: Double

        static func measure(
            _ enclave: Enclave,
            count: Int,
            _ operation: nonisolated(nonsending) () async throws -> Void
        ) async throws -> Switches? {
            guard let hostBefore = CallFloor.contextSwitches(),
                let enclaveBefore = CallFloor.contextSwitches(process: enclave.processID)
            else { return nil }
            for _ in 0..<count { try await operation() }
            guard let hostAfter = CallFloor.contextSwitches(),
                let enclaveAfter = CallFloor.contextSwitches(process: enclave.processID)
            else { return nil }
            func perCall(
                _ before: (voluntary: Int, involuntary: Int),
                _ after: (voluntary: Int, involuntary: Int)
            )
                -> Double
            {
                Double(after.voluntary + after.involuntary - before.voluntary - before.involuntary) / Double(count)
            }
            return Switches(host: perCall(hostBefore, hostAfter), enclave: perCall(enclaveBefore, enclaveAfter))
        }
    }

    /// The call of `--loop KIND`.
    static func loopOperation(
        _ enclave: Enclave,
        kind: String
    ) throws -> nonisolated(nonsending) () async throws -> Void {
        switch kind {
        case "empty": return { _ = try await enclave.call(BenchCalls.Nothing.self, Empty()) }
        case "ocall": return { _ = try await enclave.call(BenchCalls.WithOCall.self, Empty()) }
        case "echo": return { _ = try await enclave.ping() }
        case "4kib":
            let kib4 = [UInt8](repeating: 0xA5, count: 4 << 10)
            return { _ = try await enclave.call(BenchCalls.Bytes.self, kib4) }
        case "1mib":
            let mib1 = [UInt8](repeating: 0x5A, count: 1 << 20)
            return { _ = try await enclave.call(BenchCalls.Bytes.self, mib1) }
        case "sl-empty": return { _ = try await enclave.call(BenchCalls.SwitchlessNothing.self, Empty()) }
        case "sl-4kib":
            let kib4 = [UInt8](repeating: 0xA5, count: 4 << 10)
            return { _ = try await enclave.call(BenchCalls.SwitchlessBytes.self, kib4) }
        case "sl-echo": return { _ = try await enclave.switchlessPing() }
        case "sl-ocall": return { _ = try await enclave.call(BenchCalls.SwitchlessWithOCall.self, Empty()) }
        default:
            throw EnclaveError.invalidConfiguration(
                "--loop takes empty, ocall, echo, 4kib, 1mib, sl-empty, sl-4kib, sl-echo or sl-ocall, not \(kind)"
            )
        }
    }

    /// `--loop KIND`: make only that call for `seconds`, then print its rate, median and switches per call (a run to
    /// attach `strace -c -f -p` or `perf` to: the enclave's process ID is printed first).
    static func profile(_ enclave: Enclave, kind: String, seconds: Double, cpus: String?) async throws {
        let operation = try loopOperation(enclave, kind: kind)
        if let cpus {
            let parts = cpus.split(separator: ",").compactMap { Int($0) }
            guard parts.count == 2 else { throw EnclaveError.invalidConfiguration("--cpus takes HOST,ENCLAVE") }
            try CallFloor.pin(cpu: parts[0])
            try CallFloor.pin(process: enclave.processID, cpu: parts[1])
        }
        print("host \(getpid()), enclave \(enclave.processID): \(kind) calls for \(seconds) s")
        // Switches are read from /proc after each batch: switchless calls are so short that a 500-call batch would
        // spend a third of its time reading them.
        let batch = kind.hasPrefix("sl-") ? 20_000 : 500
        for _ in 0..<200 { try await operation() }
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        var samples: [Double] = []
        var switches: [Switches] = []
        while clock.now < end {
            let batchStart = clock.now
            if let counted = try await Switches.measure(enclave, count: batch, operation) { switches.append(counted) }
            let elapsed = clock.now - batchStart
            samples.append(
                (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
                    / Double(batch)
            )
        }
        let row = Row(name: kind, samples: samples)
        let host = switches.map(\.host).reduce(0, +) / Double(max(1, switches.count))
        let inEnclave = switches.map(\.enclave).reduce(0, +) / Double(max(1, switches.count))
        print(
            String(
                format: "%@: %d calls, median of %d-call batches %.2f µs/call; context switches per call: "
                    + "host %.2f, enclave %.2f",
                kind,
                samples.count * batch,
                batch,
                row.median,
                host,
                inEnclave
            )
        )
    }
}
