import ArgumentParser
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation

extension EnclaveCommand {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks (build with -c release).",
            subcommands: [Calls.self, Seal.self, Verify.self, Service.self]
        )
    }
}

extension EnclaveCommand.Bench {
    struct Calls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Round-trip latency of ECALLs and OCALLs against the raw transport floor."
        )

        @Option(help: "Round trips per small-payload measurement.")
        var iterations = 20_000

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let enclave = try await Self.loadSelf()
            defer { Task { await enclave.terminate() } }
            let small = max(100, iterations)
            let large = max(20, small / 100)
            let kib4 = [UInt8](repeating: 0xA5, count: 4 << 10)
            let mib1 = [UInt8](repeating: 0x5A, count: 1 << 20)

            // Interleaved: every round measures each operation once, so drift in the machine's state (frequency,
            // other load, a VM's vCPU wake-ups) affects all of them alike.
            let rows = try await Row.interleaved(
                rounds: small,
                [
                    ("transport floor (raw frame echo)", 1, { _ = try await enclave.ping() }),
                    ("empty ECALL", 1, { _ = try await enclave.call(BenchCalls.Nothing.self, Empty()) }),
                    ("ECALL, 4 KiB argument", 1, { _ = try await enclave.call(BenchCalls.Bytes.self, kib4) }),
                    (
                        "ECALL, 1 MiB argument", small / large,
                        { _ = try await enclave.call(BenchCalls.Bytes.self, mib1) }
                    ),
                    ("raw frame echo, 1 MiB each way", small / large, { _ = try await enclave.ping(mib1) }),
                    ("ECALL making one OCALL", 1, { _ = try await enclave.call(BenchCalls.WithOCall.self, Empty()) }),
                ]
            )

            let floor = rows[0].median
            let ratio = rows[1].median / floor
            if json {
                let object: [String: Any] = [
                    "unit": "microseconds",
                    "results": rows.map {
                        ["name": $0.name, "iterations": $0.count, "median": $0.median, "p99": $0.p99]
                    },
                    "floorMedian": floor,
                    "emptyECallOverFloor": ratio,
                    "ocallOverhead": rows[5].median - rows[1].median,
                ]
                try Files.printJSON(object)
            } else {
                print(
                    "enclave bench calls — round-trip latency in microseconds (\(ProcessInfo.processInfo.activeProcessorCount) CPUs)"
                )
                print("name".padding(toLength: 36, withPad: " ", startingAt: 0) + "      n     median        p99")
                for row in rows {
                    print(
                        row.name.padding(toLength: 36, withPad: " ", startingAt: 0)
                            + String(row.count).leftPadded(7) + Self.format(row.median).leftPadded(11)
                            + Self.format(row.p99).leftPadded(11)
                    )
                }
                print("empty ECALL / floor: \(String(format: "%.2f", ratio))× (target ≤ 1.50×)")
                print("OCALL cost inside an ECALL: \(Self.format(rows[5].median - rows[1].median)) µs")
            }
        }

        static func format(_ value: Double) -> String { String(format: "%.1f", value) }

        /// Sign this executable with a throw-away key and load it as the benchmark enclave.
        static func loadSelf() async throws -> Enclave {
            let image = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            let directory = NSTemporaryDirectory() + "enclavekit-bench-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let config = EnclaveConfig(productID: 0, securityVersion: 0, maxThreads: 4, maxMemory: 4 << 30)
            let measured = try EnclaveImage(path: image)
            let body = EnclaveSignature.Body(manifest: measured.manifest(config: config), config: config)
            let signature = try EnclaveSignature(signing: body, with: P256.Signing.PrivateKey())
            let signaturePath = directory + "/bench.sig"
            try Data(signature.bytes).write(to: URL(fileURLWithPath: signaturePath))
            var options = Enclave.Options()
            options.signaturePath = signaturePath
            options.arguments = [BenchEnclave.launchArgument]
            options.ocalls.register(BenchCalls.HostNothing.self) { _ in Empty() }
            return try await Enclave.load(path: image, options: options)
        }
    }
}

/// One measured operation: latency samples in microseconds.
struct Row {
    var name: String
    var count: Int
    var median: Double
    var p99: Double

    typealias Operation = (name: String, every: Int, body: () async throws -> Void)

    /// Run `rounds` rounds; in each, time every operation whose `every` divides the round number.
    static func interleaved(rounds: Int, _ operations: [Operation]) async throws -> [Row] {
        for round in 0..<max(10, rounds / 10) {  // warm up
            for operation in operations where round % max(1, operation.every) == 0 { try await operation.body() }
        }
        var samples = [[Double]](repeating: [], count: operations.count)
        let clock = ContinuousClock()
        for round in 0..<rounds {
            for (index, operation) in operations.enumerated() where round % max(1, operation.every) == 0 {
                let start = clock.now
                try await operation.body()
                let elapsed = clock.now - start
                samples[index].append(
                    Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
                )
            }
        }
        return zip(operations, samples).map { operation, values in
            let sorted = values.sorted()
            return Row(
                name: operation.name,
                count: sorted.count,
                median: sorted[sorted.count / 2],
                p99: sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            )
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

extension EnclaveCommand.Bench {
    struct Seal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sealing throughput inside an enclave against raw AES-256-GCM of the same library."
        )

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let enclave = try await Calls.loadSelf()
            defer { Task { await enclave.terminate() } }
            typealias Run = BenchCalls.SealRun
            let cases: [(name: String, size: Int, iterations: Int, modes: [Run.Mode])] = [
                ("4 KiB", 4 << 10, 20_000, [.rawGCM, .sealBlob]),
                ("1 MiB", 1 << 20, 300, [.rawGCM, .sealBlob]),
                ("256 MiB stream", 256 << 20, 2, [.rawGCM, .sealStream]),
            ]
            var results: [[String: Any]] = []
            for entry in cases {
                var rates: [Run.Mode: Double] = [:]
                for mode in entry.modes {
                    // Warm up, then take the best of three runs.
                    let warm = Run(mode: mode, size: entry.size, iterations: max(1, entry.iterations / 10))
                    _ = try await enclave.call(BenchCalls.Seal.self, warm)
                    var best = Double.infinity
                    for _ in 0..<3 {
                        let run = Run(mode: mode, size: entry.size, iterations: entry.iterations)
                        best = min(best, try await enclave.call(BenchCalls.Seal.self, run))
                    }
                    rates[mode] = Double(entry.size) * Double(entry.iterations) / best / 1e6
                }
                let raw = rates[.rawGCM] ?? 0
                let sealed = rates[.sealBlob] ?? rates[.sealStream] ?? 0
                results.append(["size": entry.name, "rawMBps": raw, "sealMBps": sealed, "ratio": sealed / raw])
            }
            if json {
                let data = try JSONSerialization.data(
                    withJSONObject: ["results": results],
                    options: [.prettyPrinted, .sortedKeys]
                )
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print(
                "enclave bench seal — MB/s inside the enclave (best of 3), raw AES-256-GCM of swift-crypto as the floor"
            )
            print("size".padding(toLength: 18, withPad: " ", startingAt: 0) + "  raw GCM      sealed    sealed/raw")
            for row in results {
                let name = (row["size"] as? String ?? "").padding(toLength: 18, withPad: " ", startingAt: 0)
                let raw = String(format: "%9.1f", row["rawMBps"] as? Double ?? 0)
                let sealed = String(format: "%11.1f", row["sealMBps"] as? Double ?? 0)
                let ratio = String(format: "%11.0f%%", 100 * (row["ratio"] as? Double ?? 0))
                print(name + raw + sealed + ratio)
            }
            print("target: sealed ≥ 80% of raw at 1 MiB")
        }
    }
}
