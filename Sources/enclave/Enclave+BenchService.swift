import ArgumentParser
import Attestation
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Logging
import X509

extension EnclaveCommand.Bench {
    struct Service: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attestation cost per request: in process, and over HTTPS to a running service.",
            discussion: """
                Sets the service up as `enclave serve attestation --allow-simulated` does (SQLite, a self-signed TLS \
                identity, simulated collateral issued once per TCB state and parsed once per bundle, one \
                verification cache) and measures, for simulated SGX evidence and — with --sgx-quote and \
                --sgx-collateral — a real SGX quote: the verifier alone (EvidenceVerifier with the service's anchors, \
                collateral provider and cache), the service core (verify, runtime-data binding, policy, token \
                signing, audit row) and HTTPS requests from AttestationClient to the running server. Each path is \
                measured with one client (latency) and with --concurrency clients (throughput). Simulated requests \
                carry a fresh quote each, binding its own runtime data; the real quote is the same on every request \
                (one platform: the verification cache hits after the first, as it does in service).
                """
        )

        @Option(help: "Requests per measurement.")
        var requests = 1000

        @Option(help: "Concurrent clients for the throughput figures.")
        var concurrency = 16

        @Option(help: "A real SGX quote to attest as well (binary or hexadecimal).")
        var sgxQuote: String?

        @Option(help: "Collateral for --sgx-quote: a dcap-qvl JSON bundle or a PCCS directory.")
        var sgxCollateral: String?

        @Option(help: "The service clock for --sgx-quote, as Unix seconds (its collateral's window).")
        var sgxAt: Int64?

        @Flag(help: "Print JSON.")
        var json = false

        /// One evidence kind, set up as the service runs it.
        struct Setup {
            var label: String
            var route: String
            var core: AttestationServiceCore
            var store: SQLiteServiceStore
            var verifier: EvidenceVerifier
            var time: @Sendable () -> Date
            var requests: [(evidence: [UInt8], runtime: [UInt8]?)]
        }

        struct Measurement {
            var rate: Double
            var p50: Double
            var p99: Double
            var json: [String: Any] { ["requestsPerSecond": rate, "p50Millis": p50, "p99Millis": p99] }
        }

        func run() async throws {
            let directory = NSTemporaryDirectory() + "enclavekit-bench-service-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var logger = Logger(label: "enclavekit.attestation")
            logger.logLevel = .warning
            let count = max(concurrency, requests)
            // Every store is closed, whatever fails (an SQLite connection dropped open asserts in debug builds).
            var setups: [Setup] = []
            var results: [(label: String, paths: [(name: String, latency: Measurement, load: Measurement)])] = []
            do {
                setups.append(try await simulated(directory: directory + "/simulated", count: count, logger: logger))
                if let sgxQuote {
                    guard let sgxCollateral else { throw ValidationError("--sgx-quote needs --sgx-collateral") }
                    setups.append(
                        try await realSGX(
                            quote: sgxQuote,
                            collateral: sgxCollateral,
                            directory: directory + "/sgx",
                            count: count,
                            logger: logger
                        )
                    )
                }
                for setup in setups {
                    let paths = try await measure(setup, count: count, directory: directory, logger: logger)
                    results.append((setup.label, paths))
                }
            } catch {
                for setup in setups { try? await setup.store.close() }
                throw error
            }
            for setup in setups { try await setup.store.close() }

            if json {
                let object: [String: Any] = [
                    "requests": count, "concurrency": concurrency,
                    "evidence": results.map { result in
                        [
                            "evidence": result.label,
                            "paths": Dictionary(
                                uniqueKeysWithValues: result.paths.map {
                                    ($0.name, ["oneClient": $0.latency.json, "concurrent": $0.load.json])
                                }
                            ),
                        ] as [String: Any]
                    },
                ]
                try Files.printJSON(object)
                return
            }
            print(
                "enclave bench service — \(count) requests per figure; latency with 1 client, rate with \(concurrency)"
            )
            for result in results {
                print("\n\(result.label)")
                print(
                    "path                               1 client: p50 ms   p99 ms   req/s   \(concurrency) clients: req/s   p50 ms   p99 ms"
                )
                for path in result.paths {
                    print(
                        path.name.padding(toLength: 35, withPad: " ", startingAt: 0)
                            + String(format: "%16.3f%9.3f%8.0f", path.latency.p50, path.latency.p99, path.latency.rate)
                            + String(format: "%21.0f%9.2f%9.2f", path.load.rate, path.load.p50, path.load.p99)
                    )
                }
                if let raw = result.paths.first, let served = result.paths.last {
                    print(
                        String(
                            format: "served / verifier: %.0f%% of the rate with %d clients",
                            served.load.rate / raw.load.rate * 100,
                            concurrency
                        )
                    )
                }
            }
        }

        /// The verifier, the core and the HTTPS server, each with one client and with `concurrency` clients.
        func measure(
            _ setup: Setup,
            count: Int,
            directory: String,
            logger: Logger
        ) async throws -> [(name: String, latency: Measurement, load: Measurement)] {
            let work = setup.requests
            let route = setup.route
            let verifier = setup.verifier
            let core = setup.core
            let time = setup.time
            let verify: @Sendable (Int) async throws -> Void = { index in
                let evidence = try Evidence(serviceDocument: work[index].evidence, route: route)
                _ = try await verifier.claims(evidence, at: time())
            }
            let attest: @Sendable (Int) async throws -> Void = { index in
                _ = try await core.attest(
                    type: AttestationType(rawValue: route) ?? .simulatedEnclave,
                    request: .init(evidence: work[index].evidence, runtimeData: work[index].runtime.map { ($0, false) })
                )
            }
            var paths: [(name: String, latency: Measurement, load: Measurement)] = []
            for (name, operation) in [("verifier (in process)", verify), ("service core (in process)", attest)] {
                let latency = try await Self.measure(count: count, concurrency: 1, operation)
                let load = try await Self.measure(count: count, concurrency: concurrency, operation)
                paths.append((name, latency, load))
            }

            // The running server over HTTPS, as `enclave serve attestation` serves by default.
            let identity = try TLSIdentity.selfSigned(
                directory: directory + "/tls-" + UUID().uuidString,
                hostnames: ["127.0.0.1"]
            )
            let server = try await AttestationServer.start(core: core, tls: identity, logger: logger)
            do {
                guard let endpoint = URL(string: "https://127.0.0.1:\(server.port)") else {
                    throw ValidationError("no URL for port \(server.port)")
                }
                let client = AttestationClient(
                    endpoint: endpoint,
                    trust: try .certificates(pem: identity.certificateChainPEM)
                )
                let post: @Sendable (Int) async throws -> Void = { index in
                    _ = try await client.attest(
                        type: route,
                        evidence: work[index].evidence,
                        runtimeData: work[index].runtime.map { .init(data: $0, dataType: .binary) }
                    )
                }
                // Warm up: connections and TLS sessions, as a running client has them.
                _ = try await Self.measure(count: min(count, 4 * concurrency), concurrency: concurrency, post)
                let latency = try await Self.measure(count: count, concurrency: 1, post)
                let load = try await Self.measure(count: count, concurrency: concurrency, post)
                paths.append(("served (HTTPS, AttestationClient)", latency, load))
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
            return paths
        }

        /// Simulated SGX evidence, configured as `enclave serve attestation --allow-simulated` configures it.
        func simulated(directory: String, count: Int, logger: Logger) async throws -> Setup {
            let platform = try SimulatedPlatform.open(directory: directory + "/platform")
            let store = try await SQLiteServiceStore.open(directory: directory + "/data")
            var configuration = AttestationServiceCore.Configuration(issuer: "https://127.0.0.1")
            configuration.allowSimulated = true
            let anchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
            configuration.simulatedAnchor = anchor
            let provider = AttestationServiceCore.Configuration.simulatedCollateral { time in
                try platform.collateralJSON(at: time)
            }
            configuration.simulatedCollateral = provider
            let core = try await AttestationServiceCore(configuration: configuration, store: store, logger: logger)
            // The service's verifier for SimulatedEnclave: the simulated root, its collateral provider, a cache.
            let verifier = EvidenceVerifier(
                anchors: .init(intel: [.init(certificate: anchor, simulated: true)]),
                collateral: .init(allowsChainOnly: true) { _, time throws(AttestationError) in
                    do { return try provider(time) } catch { throw AttestationError(error) }
                },
                cache: VerificationCache()
            )
            let identity = try BenchIdentity.standIn()
            var requests: [(evidence: [UInt8], runtime: [UInt8]?)] = []
            for index in 0..<count {
                let runtime = Array("request \(index)".utf8)
                let reportData = Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
                requests.append((try platform.quote(for: identity, reportData: reportData), runtime))
            }
            return Setup(
                label: "simulated SGX evidence (a fresh quote per request, runtime data bound)",
                route: AttestationType.simulatedEnclave.rawValue,
                core: core,
                store: store,
                verifier: verifier,
                time: { Date() },
                requests: requests
            )
        }

        /// A real SGX quote with its collateral given by FMSPC (`--collateral FMSPC=FILE`), the service's clock at
        /// `--sgx-at`.
        func realSGX(
            quote path: String,
            collateral: String,
            directory: String,
            count: Int,
            logger: Logger
        )
            async throws -> Setup
        {
            let bytes = try Files.evidence(path)
            let quote = try DCAPQuote(bytes: bytes)
            guard !quote.isTDX else { throw ValidationError("--sgx-quote is a TDX quote") }
            guard let leaf = try quote.pckChain().first,
                let value = leaf.extensions.first(where: { $0.oid == SGXExtensions.oid })?.value
            else { throw ValidationError("the quote's PCK certificate has no SGX extension") }
            let fmspc = Hex.encode(try SGXExtensions(derEncoded: value).fmspc).lowercased()
            let bundle = try Collateral(contentsOf: collateral)
            let instant = Date(timeIntervalSince1970: TimeInterval(sgxAt ?? Int64(Date().timeIntervalSince1970)))
            let store = try await SQLiteServiceStore.open(directory: directory + "/data")
            var configuration = AttestationServiceCore.Configuration(issuer: "https://127.0.0.1")
            configuration.collateral[fmspc] = bundle
            configuration.clock = { instant }
            let core = try await AttestationServiceCore(configuration: configuration, store: store, logger: logger)
            let verifier = EvidenceVerifier(
                anchors: .intelAndAMD,
                collateral: .fixed(bundle),
                cache: VerificationCache()
            )
            return Setup(
                label:
                    "real SGX quote \((path as NSString).lastPathComponent) at \(Int64(instant.timeIntervalSince1970)) "
                    + "(the same quote per request)",
                route: AttestationType.sgxEnclave.rawValue,
                core: core,
                store: store,
                verifier: verifier,
                time: { instant },
                requests: Array(repeating: (bytes, nil), count: count)
            )
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
