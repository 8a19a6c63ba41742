import ArgumentParser
import AsyncHTTPClient
import Attestation
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import Logging
import NIOCore
import X509

extension EnclaveCommand.Bench {
    struct Service: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attestation service throughput over loopback, beside the raw verify-and-sign rate.",
            discussion: """
                Starts the service in process (SQLite, a throw-away simulated platform), then concurrent clients post \
                simulated SGX evidence with bound runtime data over HTTP; in the same run, the same work is done by \
                calling the service core directly (verify, bind, policy, sign, audit) with the same concurrency.
                """
        )

        @Option(help: "Requests per measurement.")
        var requests = 2000

        @Option(help: "Concurrent clients.")
        var concurrency = 16

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let directory = NSTemporaryDirectory() + "enclavekit-bench-service-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let platform = try SimulatedPlatform.open(directory: directory + "/platform")
            let store = try await SQLiteServiceStore.open(directory: directory + "/data")
            var configuration = AttestationServiceCore.Configuration(issuer: "http://127.0.0.1")
            configuration.allowSimulated = true
            configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
            let collateral = try Collateral(
                dcapQVLJSON: platform.collateralJSON(issued: Date().addingTimeInterval(-60))
            )
            configuration.simulatedCollateral = { _ in collateral }
            var logger = Logger(label: "enclavekit.attestation")
            logger.logLevel = .warning
            let core = try await AttestationServiceCore(configuration: configuration, store: store, logger: logger)

            let identity = EnclaveIdentity(
                uniqueID: try Digest32(bytes: [UInt8](repeating: 1, count: 32)),
                signerID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
                productID: 1,
                securityVersion: 1,
                attributes: []
            )
            let count = max(concurrency, requests)
            var prepared: [(evidence: [UInt8], runtime: [UInt8])] = []
            for index in 0..<count {
                let runtime = Array("request \(index)".utf8)
                let reportData = Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
                prepared.append((try platform.quote(for: identity, reportData: reportData), runtime))
            }
            let work = prepared
            let bodies = work.map {
                "{\"quote\":\"\(Base64URL.encode($0.evidence))\",\"runtimeData\":{\"data\":\"\(Base64URL.encode($0.runtime))\",\"dataType\":\"Binary\"}}"
            }

            // Raw: the core, no HTTP.
            let raw = try await Self.measure(count: count, concurrency: concurrency) { index in
                _ = try await core.attest(
                    type: .simulatedEnclave,
                    request: .init(evidence: work[index].evidence, runtimeData: (work[index].runtime, false))
                )
            }

            // Over loopback.
            let server = try await AttestationServer.start(core: core, logger: logger)
            let url = "http://127.0.0.1:\(server.port)/attest/SimulatedEnclave?api-version=2022-08-01"
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            let served: Measurement
            do {
                served = try await Self.measure(count: count, concurrency: concurrency) { index in
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: bodies[index]))
                    let response = try await http.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    guard response.status == .ok else {
                        throw ValidationError("the service answered \(response.status)")
                    }
                }
            } catch {
                try? await http.shutdown()
                await server.stop()
                try? await store.close()
                throw error
            }
            try await http.shutdown()
            await server.stop()
            try await store.close()

            let ratio = served.rate / raw.rate
            if json {
                let object: [String: Any] = [
                    "requests": count, "concurrency": concurrency,
                    "service": ["requestsPerSecond": served.rate, "p50ms": served.p50, "p99ms": served.p99],
                    "raw": ["requestsPerSecond": raw.rate, "p50ms": raw.p50, "p99ms": raw.p99],
                    "serviceOverRaw": ratio,
                ]
                try Files.printJSON(object)
                return
            }
            print("enclave bench service — \(count) simulated SGX attestations, \(concurrency) concurrent clients")
            print("path                          requests/s     p50 ms     p99 ms")
            for (name, result) in [("raw (verify, policy, sign)", raw), ("service over loopback HTTP", served)] {
                print(
                    name.padding(toLength: 28, withPad: " ", startingAt: 0)
                        + String(format: "%12.0f%11.2f%11.2f", result.rate, result.p50, result.p99)
                )
            }
            print(String(format: "service / raw: %.0f%% (target ≥ 50%%)", ratio * 100))
        }

        struct Measurement {
            var rate: Double
            var p50: Double
            var p99: Double
        }

        static func measure(
            count: Int,
            concurrency: Int,
            _ operation: @escaping @Sendable (Int) async throws -> Void
        ) async throws -> Measurement {
            let clock = ContinuousClock()
            let start = clock.now
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var own: [Double] = []
                        var index = worker
                        while index < count {
                            let begin = clock.now
                            try await operation(index)
                            let elapsed = clock.now - begin
                            own.append(
                                Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
                            )
                            index += concurrency
                        }
                        return own
                    }
                }
                var all: [Double] = []
                for try await part in group { all += part }
                return all.sorted()
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return Measurement(
                rate: Double(count) / seconds,
                p50: latencies[latencies.count / 2],
                p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
            )
        }
    }
}
