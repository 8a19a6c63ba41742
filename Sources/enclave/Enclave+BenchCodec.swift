import ArgumentParser
import EnclaveCore
import Foundation

extension EnclaveCommand.Bench {
    struct Codec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode + decode cost of the binary call codec, in process (no enclave).",
            discussion: """
                Each case encodes a value with BinaryEncoder and decodes it with BinaryDecoder, as a call does once \
                for its argument and once for its result. Every figure is the median over rounds of the mean time \
                per encode+decode in one round; the encoded size is printed beside it.
                """
        )

        @Option(help: "Rounds per case (the median is printed).")
        var rounds = 9

        @Option(help: "Run only the case with this key (empty, int, string, smallStruct, bytes4KiB, bytes1MiB).")
        var only: String?

        @Option(help: "Divide every case's iteration count by this (for profiling under valgrind).")
        var divide = 1

        @Flag(help: "Print JSON.")
        var json = false

        /// A small argument of the kind calls pass around.
        struct Small: Codable, Equatable, Sendable {
            var id: UInt64
            var name: String
            var enabled: Bool
            var values: [Int32]
            var note: String?
        }

        func run() throws {
            let small = Small(id: 42, name: "request-0042", enabled: true, values: [1, -2, 300], note: nil)
            var results: [(name: String, key: String, size: Int, nanos: Double)] = []
            func measure<T: Codable & Equatable>(
                _ name: String,
                _ key: String,
                _ value: T,
                iterations: Int
            ) throws
                -> (name: String, key: String, size: Int, nanos: Double)?
            {
                if let only, only != key { return nil }
                return try self.measure(name, key, value, iterations: iterations)
            }
            if let result = try measure("Empty", "empty", Empty(), iterations: 200_000) { results.append(result) }
            if let result = try measure("Int", "int", 123_456, iterations: 200_000) { results.append(result) }
            if let result = try measure("String (12 B)", "string", "request-0042", iterations: 200_000) {
                results.append(result)
            }
            if let result = try measure("small struct", "smallStruct", small, iterations: 100_000) {
                results.append(result)
            }
            if let result = try measure(
                "4 KiB [UInt8]",
                "bytes4KiB",
                [UInt8](repeating: 7, count: 4 << 10),
                iterations: 100_000
            ) {
                results.append(result)
            }
            if let result = try measure(
                "1 MiB [UInt8]",
                "bytes1MiB",
                [UInt8](repeating: 7, count: 1 << 20),
                iterations: 300
            ) {
                results.append(result)
            }
            if json {
                var object: [String: Any] = [:]
                for result in results {
                    object[result.key] = ["encodedBytes": result.size, "nanosPerRoundTrip": result.nanos]
                }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("case              bytes      ns per encode+decode")
                for result in results {
                    let name = result.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                    let size = String(result.size).padding(toLength: 10, withPad: " ", startingAt: 0)
                    print("\(name)  \(size) \(String(format: "%.0f", result.nanos))")
                }
            }
        }

        private func measure<T: Codable & Equatable>(
            _ name: String,
            _ key: String,
            _ value: T,
            iterations: Int
        ) throws -> (name: String, key: String, size: Int, nanos: Double) {
            let encoder = BinaryEncoder()
            let decoder = BinaryDecoder()
            let iterations = max(1, iterations / max(1, divide))
            let size = try encoder.encode(value).count
            guard try decoder.decode(T.self, from: encoder.encode(value)) == value else {
                throw ValidationError("\(name): the value does not survive a round trip")
            }
            let clock = ContinuousClock()
            var samples: [Double] = []
            for _ in 0..<max(1, rounds) {
                var sink = 0
                let elapsed = try clock.measure {
                    for _ in 0..<iterations {
                        let bytes = try encoder.encode(value)
                        let decoded = try decoder.decode(T.self, from: bytes)
                        sink &+= withExtendedLifetime(decoded) { bytes.count }
                    }
                }
                guard sink != 0 else { throw ValidationError("nothing measured") }
                let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
                samples.append(nanos / Double(iterations))
            }
            samples.sort()
            return (name, key, size, samples[samples.count / 2])
        }
    }
}
