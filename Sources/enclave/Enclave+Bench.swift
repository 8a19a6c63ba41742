import ArgumentParser
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation

extension EnclaveCommand {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks (build with -c release).",
            subcommands: [Calls.self]
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

            var rows: [Row] = []
            rows.append(
                try await Row.measure("transport floor (raw frame echo)", small) { _ = try await enclave.ping() }
            )
            rows.append(
                try await Row.measure("empty ECALL", small) {
                    _ = try await enclave.call(BenchCalls.Nothing.self, Empty())
                }
            )
            rows.append(
                try await Row.measure("ECALL, 4 KiB argument", small) {
                    _ = try await enclave.call(BenchCalls.Bytes.self, kib4)
                }
            )
            rows.append(
                try await Row.measure("ECALL, 1 MiB argument", large) {
                    _ = try await enclave.call(BenchCalls.Bytes.self, mib1)
                }
            )
            rows.append(
                try await Row.measure("ECALL making one OCALL", small) {
                    _ = try await enclave.call(BenchCalls.WithOCall.self, Empty())
                }
            )
            rows.append(try await Row.measure("transport floor again", small) { _ = try await enclave.ping() })

            let floor = min(rows[0].median, rows[5].median)
            let ratio = rows[1].median / floor
            if json {
                let object: [String: Any] = [
                    "unit": "microseconds",
                    "results": rows.map {
                        ["name": $0.name, "iterations": $0.count, "median": $0.median, "p99": $0.p99]
                    },
                    "floorMedian": floor,
                    "emptyECallOverFloor": ratio,
                    "ocallOverhead": rows[4].median - rows[1].median,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
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
                print("OCALL cost inside an ECALL: \(Self.format(rows[4].median - rows[1].median)) µs")
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

    static func measure(_ name: String, _ count: Int, _ body: () async throws -> Void) async throws -> Row {
        for _ in 0..<max(10, count / 10) { try await body() }  // warm up
        var samples: [Double] = []
        samples.reserveCapacity(count)
        let clock = ContinuousClock()
        for _ in 0..<count {
            let start = clock.now
            try await body()
            let elapsed = clock.now - start
            samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
        }
        samples.sort()
        return Row(
            name: name,
            count: count,
            median: samples[samples.count / 2],
            p99: samples[min(samples.count - 1, samples.count * 99 / 100)]
        )
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
