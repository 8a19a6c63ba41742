import ArgumentParser
import AsyncHTTPClient
import Attestation
import AttestationAPI
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBrokerInterface
import KeyBrokerService
import Logging
import NIOPosix
import NIOSSL
import X509

extension EnclaveCommand.Bench {
    struct KeyBrokerBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keybroker",
            abstract: "Key releases per second: over HTTPS with concurrent clients, beside the raw rate in process.",
            discussion: """
                Starts an attestation service and the key broker (the real broker enclave) in this process, creates \
                an AES-256 key whose policy names a signer and a minimum SVN, makes tokens for that identity, then \
                measures (1) raw: BrokerRelease called on the enclave directly (token verification, policy, unwrap \
                from the at-rest envelope, wrap to the token's key, JWS signature), with --clients calls in flight; \
                (2) served: POST /keys/{name}/{version}/release over HTTPS with --clients concurrent clients, each \
                on a keep-alive connection of its own, in this process on an event loop thread of their own (--client \
                nio: plain NIO HTTP/1.1 over NIOSSL, one request at a time per connection, each answer read and \
                checked; --client asynchttpclient: KeyBrokerClient on AsyncHTTPClient, a pool of --clients \
                connections). Both share the machine's cores with the broker. Each side also reports CPU time per \
                release (the broker's process without the client's event loop thread, the client's event loop \
                thread, the broker enclave) and context switches per release: figures that hold whatever else runs \
                on the machine. Targets (issue 12): served >= 50% of raw, >= 1,000 releases/s on 2 cores. Build \
                with -c release.
                """
        )

        @Option(help: "Seconds per measurement.")
        var seconds = 5.0

        @Option(help: "Concurrent clients (and raw calls in flight).")
        var clients = 16

        @Flag(help: "Print JSON.")
        var json = false

        @Option(help: "Which measurements to run: both, raw or served (one alone, to profile it).")
        var only = "both"

        @Option(help: "The served side's client: nio (plain NIO HTTP/1.1 over TLS) or asynchttpclient.")
        var client = "nio"

        struct Measurement {
            var rate: Double
            var p50: Double
            var p99: Double
            /// CPU milliseconds per release: the broker's process (without the client's event loop thread), the
            /// client's event loop thread, the broker enclave.
            var hostCPU = 0.0
            var clientCPU = 0.0
            var enclaveCPU = 0.0
            /// Context switches per release (voluntary + involuntary): the broker's process (client included), the
            /// enclave.
            var hostSwitches = 0.0
            var enclaveSwitches = 0.0
            var json: [String: Any] {
                [
                    "releasesPerSecond": rate, "p50Millis": p50, "p99Millis": p99,
                    "cpuMillisPerRelease": ["broker": hostCPU, "client": clientCPU, "enclave": enclaveCPU],
                    "contextSwitchesPerRelease": ["process": hostSwitches, "enclave": enclaveSwitches],
                ]
            }
        }

        /// CPU seconds and context switches so far: this process, its threads named `clientPrefix…`, the enclave.
        struct Usage {
            var process: Double
            var client: Double
            var enclave: Double
            var processSwitches: Int
            var enclaveSwitches: Int

            static func now(enclave: Int32?, clientPrefix: String) -> Usage {
                let switches = CallFloor.contextSwitches()
                let enclaveSwitches = enclave.flatMap { CallFloor.contextSwitches(process: $0) }
                return Usage(
                    process: CallFloor.cpuSeconds(process: getpid()) ?? 0,
                    client: threadCPUSeconds(prefix: clientPrefix),
                    enclave: enclave.flatMap { CallFloor.cpuSeconds(process: $0) } ?? 0,
                    processSwitches: (switches?.voluntary ?? 0) + (switches?.involuntary ?? 0),
                    enclaveSwitches: (enclaveSwitches?.voluntary ?? 0) + (enclaveSwitches?.involuntary ?? 0)
                )
            }

            /// CPU seconds of this process's threads whose name starts with `prefix` (`/proc/self/task/*/stat`).
            static func threadCPUSeconds(prefix: String) -> Double {
                let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
                var ticks = 0
                for task in tasks {
                    guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                        let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"),
                        stat[stat.index(after: open)..<close].hasPrefix(prefix)
                    else { continue }
                    // After the name: state is field 3, utime 14, stime 15.
                    let fields = stat[stat.index(after: close)...].split(separator: " ")
                    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { continue }
                    ticks += user + system
                }
                return Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }

        /// `clients` loops of `body` for `seconds`, each call timed.
        func measure(
            skip: Bool = false,
            enclave: Int32?,
            _ body: @escaping @Sendable (Int) async throws -> Void
        ) async throws -> Measurement {
            try await measureLoops(skip: skip, enclave: enclave) { client, deadline in
                var times: [Double] = []
                var index = client
                while Date() < deadline {
                    let began = DispatchTime.now().uptimeNanoseconds
                    try await body(index)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - began) / 1e6)
                    index += clients
                }
                return times
            }
        }

        /// `clients` runs of `loop` (each given its client number and the deadline, answering its calls' latencies
        /// in milliseconds) for `seconds`, with the CPU time and context switches they cost.
        func measureLoops(
            skip: Bool = false,
            enclave: Int32?,
            _ loop: @escaping @Sendable (Int, Date) async throws -> [Double]
        ) async throws -> Measurement {
            guard !skip else { return Measurement(rate: 0, p50: 0, p99: 0) }
            let deadline = Date().addingTimeInterval(seconds)
            let start = Date()
            let before = Usage.now(enclave: enclave, clientPrefix: BenchReleaseClient.threadPrefix)
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for client in 0..<clients {
                    group.addTask { try await loop(client, deadline) }
                }
                var all: [Double] = []
                for try await times in group { all += times }
                return all.sorted()
            }
            let after = Usage.now(enclave: enclave, clientPrefix: BenchReleaseClient.threadPrefix)
            let elapsed = Date().timeIntervalSince(start)
            guard !latencies.isEmpty else { return Measurement(rate: 0, p50: 0, p99: 0) }
            let count = Double(latencies.count)
            let client = after.client - before.client
            return Measurement(
                rate: count / elapsed,
                p50: latencies[latencies.count / 2],
                p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
                hostCPU: (after.process - before.process - client) * 1000 / count,
                clientCPU: client * 1000 / count,
                enclaveCPU: (after.enclave - before.enclave) * 1000 / count,
                hostSwitches: Double(after.processSwitches - before.processSwitches) / count,
                enclaveSwitches: Double(after.enclaveSwitches - before.enclaveSwitches) / count
            )
        }

        func run() async throws {
            guard seconds > 0, seconds <= 600, (1...1024).contains(clients) else {
                throw ValidationError("--seconds is 0 to 600, --clients 1 to 1024")
            }
            guard ["both", "raw", "served"].contains(only) else {
                throw ValidationError("--only is both, raw or served")
            }
            guard ["nio", "asynchttpclient"].contains(client) else {
                throw ValidationError("--client is nio or asynchttpclient")
            }
            let directory = NSTemporaryDirectory() + "enclavekit-bench-keybroker-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var logger = Logger(label: "enclavekit.keybroker")
            logger.logLevel = .warning
            let platform = try SimulatedPlatform.open()

            // The attestation service, in process: tokens for one enclave identity.
            var configuration = AttestationServiceCore.Configuration(issuer: "https://attestation.bench")
            configuration.allowSimulated = true
            configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
            configuration.simulatedCollateral = AttestationServiceCore.Configuration.simulatedCollateral { time in
                try platform.collateralJSON(at: time)
            }
            let attestationStore = try await SQLiteServiceStore.open(directory: directory + "/attestation")
            let attestation = try await AttestationServiceCore(
                configuration: configuration,
                store: attestationStore,
                logger: logger
            )
            let signer = try Digest32(bytes: [UInt8](repeating: 0x5A, count: 32))
            let identity = EnclaveIdentity(
                uniqueID: try Digest32(bytes: [UInt8](repeating: 0x11, count: 32)),
                signerID: signer,
                productID: 3,
                securityVersion: 2,
                attributes: []
            )
            var tokens: [String] = []
            for _ in 0..<32 {
                let raw = P256.KeyAgreement.PrivateKey().publicKey.rawRepresentation
                let runtime = Array(
                    (#"{"keys":[{"kty":"EC","crv":"P-256","kid":"release","x":""# + Base64URL.encode(raw.prefix(32))
                        + #"","y":""# + Base64URL.encode(raw.suffix(32)) + #""}]}"#).utf8
                )
                let evidence = try platform.quote(
                    for: identity,
                    reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
                )
                tokens.append(
                    try await attestation.attest(
                        type: .simulatedEnclave,
                        request: .init(evidence: evidence, runtimeData: (runtime, true))
                    )
                )
            }

            // The broker, in process, with the real broker enclave.
            let brokerDirectory = directory + "/broker"
            let tls = try TLSIdentity.selfSigned(directory: brokerDirectory)
            let launch = try await KeyBrokerLaunch.start(
                dataDirectory: brokerDirectory,
                host: "127.0.0.1",
                port: 0,
                authorities: [
                    BrokerAuthority(
                        url: "https://attestation.bench",
                        certificates: try EnclaveCommand.Serve.KeyBroker.certificates(
                            jwks: attestation.signer.jwksJSON
                        )
                    )
                ],
                enclavePath: nil,
                debugEnclave: false,
                adminTokenFile: nil,
                tls: tls,
                logger: logger
            )
            let running = try await KeyBrokerServer.start(core: launch.core, tls: tls, logger: logger)
            let admin = try Files.readText(brokerDirectory + "/admin-token", what: "admin token")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let policy = """
                {"version":"1.0.0","anyOf":[{"authority":"https://attestation.bench","allOf":[\
                {"claim":"x-ms-sgx-mrsigner","equals":"\(signer.hex)"},{"claim":"x-ms-sgx-svn","greaterOrEquals":2}]}]}
                """
            let bundle = try await launch.core.createKey(
                name: "bench",
                parameters: KeyCreateParameters(
                    kty: "oct-HSM",
                    attributes: KeyAttributes(exportable: true),
                    releasePolicy: KeyReleasePolicy(data: Base64URL.encode(Array(policy.utf8)))
                ),
                credential: admin
            )
            let version = String(bundle.key.kid?.split(separator: "/").last ?? "")
            guard let stored = try await launch.core.store.version(name: "bench", version: version) else {
                throw RuntimeFailure(message: "the bench key did not persist")
            }
            let engine = launch.core.engine
            let enclavePID = (engine as? EnclaveBrokerEngine)?.enclave.processID
            let tokenList = tokens

            // Raw: the enclave's release path, called directly.
            let raw = try await measure(skip: only == "served", enclave: enclavePID) { index in
                let answer = try await engine.release(
                    BrokerReleaseRequest(key: stored.key, target: tokenList[index % tokenList.count])
                )
                guard answer.value != nil else {
                    throw RuntimeFailure(message: "raw release refused: \(answer.refusal?.description ?? "?")")
                }
            }
            // Served: over HTTPS, concurrent clients on keep-alive connections, on an event loop of their own.
            let served: Measurement
            let clientDescription: String
            if client == "nio" {
                let nio = try BenchReleaseClient(
                    host: "127.0.0.1",
                    port: running.port,
                    certificatePEM: tls.certificateChainPEM
                )
                let requests = try tokenList.map { token in
                    nio.request(
                        path: "/keys/bench/\(version)/release?api-version=7.4",
                        body: try WireJSON.encode(KeyReleaseParameters(target: token))
                    )
                }
                let clients = self.clients
                served = try await measureLoops(skip: only == "raw", enclave: enclavePID) { client, deadline in
                    try await nio.run(requests: requests, first: client, stride: clients, deadline: deadline)
                }
                await nio.shutdown()
                clientDescription = "NIO HTTP/1.1 over TLS, one keep-alive connection each"
            } else {
                var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
                tlsConfiguration.minimumTLSVersion = .tlsv12
                tlsConfiguration.trustRoots = .certificates(
                    try NIOSSLCertificate.fromPEMBytes(Array(tls.certificateChainPEM.utf8))
                )
                var configuration = HTTPClient.Configuration(tlsConfiguration: tlsConfiguration)
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = clients
                configuration.redirectConfiguration = .disallow  // as the clients the module makes itself
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                let http = HTTPClient(eventLoopGroup: group, configuration: configuration)
                let brokerClient = KeyBrokerClient(
                    endpoint: URL(string: "https://127.0.0.1:\(running.port)")!,
                    httpClient: http
                )
                served = try await measure(skip: only == "raw", enclave: enclavePID) { index in
                    _ = try await brokerClient.release(
                        name: "bench",
                        version: version,
                        KeyReleaseParameters(target: tokenList[index % tokenList.count])
                    )
                }
                try? await http.shutdown()
                try? await group.shutdownGracefully()
                clientDescription = "KeyBrokerClient on AsyncHTTPClient, a pool of up to \(clients) connections"
            }
            await running.stop()
            await launch.close()
            try? await attestationStore.close()

            let load =
                (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
                .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
            let ratio = raw.rate > 0 ? served.rate / raw.rate : 0
            if json {
                try Files.printJSON([
                    "raw": raw.json, "served": served.json, "servedOverRaw": ratio, "clients": clients,
                    "client": clientDescription + ", in this process on an event loop thread of its own",
                    "targets": ["servedOverRaw": 0.5, "servedReleasesPerSecond": 1000], "loadAverage": load,
                ])
            } else {
                print(
                    String(
                        format: "raw (in process, %d in flight): %8.0f releases/s  p50 %6.2f ms  p99 %6.2f ms",
                        clients,
                        raw.rate,
                        raw.p50,
                        raw.p99
                    )
                )
                print(
                    String(
                        format: "served (HTTPS, %d clients):     %8.0f releases/s  p50 %6.2f ms  p99 %6.2f ms",
                        clients,
                        served.rate,
                        served.p50,
                        served.p99
                    )
                )
                print(
                    "served by: \(clientDescription), in this process on an event loop thread of its own"
                )
                for (name, measurement) in [("raw", raw), ("served", served)] where measurement.rate > 0 {
                    print(
                        String(
                            format: "%@ CPU per release: broker %.3f ms, client %.3f ms, enclave %.3f ms; "
                                + "context switches per release: process %.1f, enclave %.1f",
                            name.padding(toLength: 6, withPad: " ", startingAt: 0),
                            measurement.hostCPU,
                            measurement.clientCPU,
                            measurement.enclaveCPU,
                            measurement.hostSwitches,
                            measurement.enclaveSwitches
                        )
                    )
                }
                print(
                    String(
                        format: "served / raw: %.0f%% (target >= 50%%); served target >= 1,000/s; load average %@",
                        ratio * 100,
                        load
                    )
                )
            }
        }
    }
}
