import ArgumentParser
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation

extension EnclaveCommand {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks (build with -c release).",
            subcommands: [
                Calls.self, Seal.self, Verify.self, Service.self, Codec.self, KeyBrokerBench.self, CleanRoomBench.self,
            ]
        )
    }
}

extension EnclaveCommand.Bench {
    struct Calls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Round-trip latency of ECALLs and OCALLs against the machine's floor, per CPU placement.",
            discussion: """
                The floor is measured in the same run by a minimal C program outside EnclaveKit: a round trip over the \
                same kind of socket (AF_UNIX socket pair, blocking read/write, two processes) and a shared-memory \
                handoff. Host and enclave are pinned to one CPU, then to two different CPUs; every call figure is \
                given as a ratio to the floor of its placement. Switchless calls (through a shared-memory call ring, \
                two slots, measured in a block of their own so that their worker stays awake) are compared with the \
                shared-memory handoff; their counters (answered through the ring, \
                spun then slept, fell back to the channel) follow the table. The idle figure is the enclave's CPU use \
                with its switchless workers asleep.
                """
        )

        @Option(help: "Round trips per small-payload measurement (per placement).")
        var iterations = 20_000

        @Flag(help: "Print JSON.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "Profile one call kind instead: make only that call for --seconds and print its rate and context "
                    + "switches per call on each side (empty, ocall, echo, 4kib, 1mib; switchless: sl-empty, sl-4kib, "
                    + "sl-echo, sl-ocall).",
                valueName: "kind"
            )
        )
        var loop: String?

        @Option(help: "With --loop: how long to run.")
        var seconds = 5.0

        @Option(help: "With --loop: host and enclave CPUs as HOST,ENCLAVE (e.g. 0,0); unpinned by default.")
        var cpus: String?

        /// One CPU placement: where the host's threads and the enclave's threads run.
        struct Placement {
            var name: String
            var description: String
            var hostCPU: Int
            var enclaveCPU: Int
        }

        /// One measured figure of a placement.
        struct Figure {
            var key: String
            var name: String
            var samples: Row
            /// The key of the floor this figure is compared with, and how many floor crossings it makes.
            var floorKey: String?
            var crossings: Double = 1
            /// Context switches per call on each side (regular calls only).
            var switches: Switches?
        }

        func run() async throws {
            let enclave = try await Self.loadSelf()
            defer { Task { await enclave.terminate() } }
            if let loop {
                try await Self.profile(enclave, kind: loop, seconds: seconds, cpus: cpus)
                return
            }
            var placements = [
                Placement(name: "oneCPU", description: "host and enclave on CPU 0", hostCPU: 0, enclaveCPU: 0)
            ]
            if CallFloor.availableCPUs > 1 {
                placements.append(
                    Placement(
                        name: "twoCPUs",
                        description: "host on CPU 0, enclave on CPU 1",
                        hostCPU: 0,
                        enclaveCPU: 1
                    )
                )
            }
            var measured: [(Placement, [Figure])] = []
            for placement in placements {
                try CallFloor.pin(cpu: placement.hostCPU)
                try CallFloor.pin(process: enclave.processID, cpu: placement.enclaveCPU)
                measured.append((placement, try await Self.measure(enclave, placement, iterations: iterations)))
            }
            try CallFloor.pin(cpu: nil)
            try CallFloor.pin(process: enclave.processID, cpu: nil)
            let idle = try await Self.idleCPU(of: enclave.processID)
            let counters = enclave.switchlessCounters
            let ocallCounters = try await enclave.switchlessOCallCounters()
            if json {
                var object = Self.jsonObject(measured, idle: idle)
                object["socketBufferBytes"] = [
                    "asked": CallFloor.channelSocketBufferBytes,
                    "effective": CallFloor.effectiveSocketBuffer(asking: CallFloor.channelSocketBufferBytes) ?? -1,
                    "usedBy": "the enclave channel (both ends) and every raw socket floor",
                ]
                let spins = enclave.channelSpins
                object["regularCallSpins"] = [
                    "paid": spins.paid, "ranOut": spins.ranOut,
                    "note": "regular calls spin up to 50 µs before blocking only while the other side runs on "
                        + "another CPU; floorMicros blocks, floorSpinningMicros spins like them",
                ]
                if let counters {
                    object["switchlessCounters"] = [
                        "switchless": counters.switchless,
                        "spunThenSlept": counters.spunThenSlept,
                        "fallback": counters.fallback,
                        "corrupt": counters.corrupt,
                    ]
                    object["switchlessWorkers"] = Self.switchlessSlots
                }
                if let ocallCounters {
                    object["switchlessOCallCounters"] = [
                        "switchless": ocallCounters.switchless,
                        "spunThenSlept": ocallCounters.spunThenSlept,
                        "fallback": ocallCounters.fallback,
                        "corrupt": ocallCounters.corrupt,
                    ]
                }
                try Files.printJSON(object)
            } else {
                Self.printTable(measured, idle: idle)
                let effective = CallFloor.effectiveSocketBuffer(asking: CallFloor.channelSocketBufferBytes)
                let spins = enclave.channelSpins
                print(
                    "sockets: the channel (both ends) and every raw socket floor ask for \(CallFloor.channelSocketBufferBytes >> 20) "
                        + "MiB of SO_SNDBUF/SO_RCVBUF (the kernel gives \(effective.map { "\($0 >> 10) KiB" } ?? "?"))"
                )
                print(
                    "spinning: regular calls read without blocking for up to 50 µs before they block, only while the other "
                        + "side runs on another CPU (never on one); the raw round trip blocks, so across CPUs a call can beat "
                        + "it: compare with the spinning raw row. Host waits that spun: \(spins.paid) got bytes, "
                        + "\(spins.ranOut) ran out"
                )
                if let counters {
                    print(
                        "switchless calls: \(counters.switchless) through the ring (\(counters.spunThenSlept) spun then "
                            + "slept), \(counters.fallback) fell back to the channel, \(counters.corrupt) corrupt"
                    )
                }
                if let ocallCounters {
                    print(
                        "switchless OCALLs (the enclave's count): \(ocallCounters.switchless) through the ring "
                            + "(\(ocallCounters.spunThenSlept) spun then slept), \(ocallCounters.fallback) fell back, "
                            + "\(ocallCounters.corrupt) corrupt"
                    )
                }
            }
        }

        /// Floors and calls of one placement, in five interleaved chunks so that drift in the machine's state affects
        /// floor and calls alike.
        static func measure(_ enclave: Enclave, _ placement: Placement, iterations: Int) async throws -> [Figure] {
            let small = max(100, iterations)
            let large = max(20, small / 100)
            let chunks = 5
            let kib4 = [UInt8](repeating: 0xA5, count: 4 << 10)
            let mib1 = [UInt8](repeating: 0x5A, count: 1 << 20)
            // Frame sizes of the calls below: a 13-byte header, the call name, the encoded argument.
            let request = 32
            let reply = 16
            let host = placement.hostCPU
            let peer = placement.enclaveCPU
            typealias Floor = (key: String, name: String, every: Int, measure: (Int) throws -> [Double])
            let floors: [Floor] = [
                (
                    "floorMicros", "raw socket round trip (C)", 1,
                    {
                        try CallFloor.socketRoundTrips(
                            iterations: $0,
                            requestBytes: request,
                            replyBytes: reply,
                            hostCPU: host,
                            peerCPU: peer
                        )
                    }
                ),
                (
                    "floor4KiBMicros", "raw socket, 4 KiB there (C)", 1,
                    {
                        try CallFloor.socketRoundTrips(
                            iterations: $0,
                            requestBytes: request + 4096,
                            replyBytes: reply,
                            hostCPU: host,
                            peerCPU: peer
                        )
                    }
                ),
                (
                    "floor1MiBMicros", "raw socket, 1 MiB there (C)", small / large,
                    {
                        try CallFloor.socketRoundTrips(
                            iterations: $0,
                            requestBytes: request + (1 << 20),
                            replyBytes: reply,
                            hostCPU: host,
                            peerCPU: peer
                        )
                    }
                ),
                (
                    "floor1MiBEchoMicros", "raw socket, 1 MiB each way (C)", small / large,
                    {
                        try CallFloor.socketRoundTrips(
                            iterations: $0,
                            requestBytes: 1 << 20,
                            replyBytes: 1 << 20,
                            hostCPU: host,
                            peerCPU: peer
                        )
                    }
                ),
                (
                    "floorSpinningMicros", "raw socket, both sides spinning (C)", host == peer ? 0 : 1,
                    {
                        try CallFloor.socketRoundTrips(
                            iterations: $0,
                            requestBytes: request,
                            replyBytes: reply,
                            hostCPU: host,
                            peerCPU: peer,
                            spinMicroseconds: 50
                        )
                    }
                ),
                (
                    "sharedMemoryHandoffMicros", "raw shared-memory handoff (C)", 1,
                    {
                        try CallFloor.sharedMemoryHandoffs(
                            iterations: $0,
                            payloadBytes: 0,
                            hostCPU: host,
                            peerCPU: peer
                        )
                    }
                ),
                (
                    "sharedMemoryHandoff4KiBMicros", "raw shared-memory handoff, 4 KiB (C)", 1,
                    {
                        try CallFloor.sharedMemoryHandoffs(
                            iterations: $0,
                            payloadBytes: 4096,
                            hostCPU: host,
                            peerCPU: peer
                        )
                    }
                ),
            ]
            let calls: [(key: String, floorKey: String?, crossings: Double, operation: Row.Operation)] = [
                (
                    "emptyECallMicros", "floorMicros", 1,
                    ("empty ECALL", 1, { _ = try await enclave.call(BenchCalls.Nothing.self, Empty()) })
                ),
                (
                    "ecall4KiBMicros", "floor4KiBMicros", 1,
                    ("ECALL, 4 KiB argument", 1, { _ = try await enclave.call(BenchCalls.Bytes.self, kib4) })
                ),
                (
                    "ecall1MiBMicros", "floor1MiBMicros", 1,
                    (
                        "ECALL, 1 MiB argument", small / large,
                        { _ = try await enclave.call(BenchCalls.Bytes.self, mib1) }
                    )
                ),
                (
                    "switchlessEmptyECallMicros", "sharedMemoryHandoffMicros", 1,
                    (
                        "switchless empty ECALL", 1,
                        { _ = try await enclave.call(BenchCalls.SwitchlessNothing.self, Empty()) }
                    )
                ),
                (
                    "switchless4KiBECallMicros", "sharedMemoryHandoff4KiBMicros", 1,
                    (
                        "switchless ECALL, 4 KiB argument", 1,
                        { _ = try await enclave.call(BenchCalls.SwitchlessBytes.self, kib4) }
                    )
                ),
                (
                    "switchlessEchoMicros", "sharedMemoryHandoffMicros", 1,
                    ("switchless echo (no decoding)", 1, { _ = try await enclave.switchlessPing() })
                ),
                (
                    "switchlessECallWithOCallMicros", "sharedMemoryHandoffMicros", 2,
                    (
                        "switchless ECALL + switchless OCALL", 1,
                        { _ = try await enclave.call(BenchCalls.SwitchlessWithOCall.self, Empty()) }
                    )
                ),
                (
                    "ecallWithOCallMicros", "floorMicros", 2,
                    ("ECALL making one OCALL", 1, { _ = try await enclave.call(BenchCalls.WithOCall.self, Empty()) })
                ),
                (
                    "channelEchoMicros", "floorMicros", 1,
                    ("channel echo (no decoding)", 1, { _ = try await enclave.ping() })
                ),
                (
                    "channelEcho1MiBMicros", "floor1MiBEchoMicros", 1,
                    ("channel echo, 1 MiB each way", small / large, { _ = try await enclave.ping(mib1) })
                ),
            ]
            var floorSamples = [[Double]](repeating: [], count: floors.count)
            var callSamples = [[Double]](repeating: [], count: calls.count)
            for _ in 0..<chunks {
                // A floor with `every` 0 does not apply to this placement (spinning on one CPU).
                for (index, floor) in floors.enumerated() where floor.every > 0 {
                    floorSamples[index] += try floor.measure(max(10, small / chunks / floor.every))
                }
                // Switchless calls in a block of their own: their worker spins only while calls keep coming (it
                // sleeps 100 µs after the last), which the regular calls interleaved with them would break. The call
                // that makes a switchless OCALL has a block of its own too: while the host's OCALL server is awake,
                // host callers yield to it rather than busy-spin (they may share its CPU), which is right for that
                // call and would slow the ECALL-only rows if interleaved with them.
                let withOCall = calls.indices.filter { calls[$0].key == "switchlessECallWithOCallMicros" }
                let switchless = calls.indices.filter {
                    calls[$0].key.hasPrefix("switchless") && !withOCall.contains($0)
                }
                // The 1 MiB calls run back to back in a block of their own, as their floors do (interleaved with
                // thousands of small calls they started with cold caches that their floors never had).
                let large = calls.indices.filter { calls[$0].operation.every > 1 }
                let regular = calls.indices.filter {
                    !calls[$0].key.hasPrefix("switchless") && !large.contains($0)
                }
                for block in [regular, large, switchless, withOCall] {
                    let every = block.map { calls[$0].operation.every }.max() ?? 1
                    let chunk = try await Row.sample(
                        rounds: max(10, small / chunks / every),
                        block.map { (calls[$0].operation.name, 1, calls[$0].operation.body) }
                    )
                    for (position, index) in block.enumerated() { callSamples[index] += chunk[position] }
                }
            }
            var figures = zip(floors, floorSamples).filter { $0.0.every > 0 }.map { floor, samples in
                Figure(key: floor.key, name: floor.name, samples: Row(name: floor.name, samples: samples))
            }
            figures += zip(calls, callSamples).map { call, samples in
                Figure(
                    key: call.key,
                    name: call.operation.name,
                    samples: Row(name: call.operation.name, samples: samples),
                    floorKey: call.floorKey,
                    crossings: call.crossings
                )
            }
            // Context switches per call, each regular call kind on its own (a load-independent figure).
            let counted: [(key: String, every: Int, kind: String)] = [
                ("emptyECallMicros", 1, "empty"), ("ecall4KiBMicros", 1, "4kib"), ("ecall1MiBMicros", 20, "1mib"),
                ("ecallWithOCallMicros", 1, "ocall"), ("channelEchoMicros", 1, "echo"),
            ]
            for (key, every, kind) in counted {
                guard let index = figures.firstIndex(where: { $0.key == key }) else { continue }
                let operation = try loopOperation(enclave, kind: kind)
                figures[index].switches = try await Switches.measure(
                    enclave,
                    count: max(50, min(2000, small / 10) / every),
                    operation
                )
            }
            return figures
        }

        /// The enclave's CPU use over one idle second, in percent of one CPU (`nil` when /proc is unreadable).
        static func idleCPU(of pid: Int32) async throws -> Double? {
            try await Task.sleep(for: .milliseconds(200))
            guard let before = CallFloor.cpuSeconds(process: pid) else { return nil }
            let clock = ContinuousClock()
            let start = clock.now
            try await Task.sleep(for: .seconds(1))
            let elapsed = clock.now - start
            guard let after = CallFloor.cpuSeconds(process: pid) else { return nil }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return 100 * (after - before) / seconds
        }

        static func ratio(_ figure: Figure, in figures: [Figure]) -> (median: Double, p99: Double)? {
            guard let key = figure.floorKey, let floor = figures.first(where: { $0.key == key }) else { return nil }
            return (
                figure.samples.median / (floor.samples.median * figure.crossings),
                figure.samples.p99 / (floor.samples.p99 * figure.crossings)
            )
        }

        static func jsonObject(_ measured: [(Placement, [Figure])], idle: Double?) -> [String: Any] {
            var object: [String: Any] = [
                "unit": "microseconds",
                "cpus": CallFloor.availableCPUs,
                "placements": measured.map { placement, figures -> [String: Any] in
                    var entry: [String: Any] = [
                        "placement": placement.name,
                        "description": placement.description,
                        "hostCPU": placement.hostCPU,
                        "enclaveCPU": placement.enclaveCPU,
                    ]
                    for figure in figures {
                        var value: [String: Any] = [
                            "name": figure.name,
                            "iterations": figure.samples.count,
                            "median": figure.samples.median,
                            "p99": figure.samples.p99,
                            "p99OverMedian": figure.samples.p99 / figure.samples.median,
                        ]
                        if let switches = figure.switches {
                            value["ctxSwitchesPerCall"] = ["host": switches.host, "enclave": switches.enclave]
                        }
                        if let key = figure.floorKey, let ratio = ratio(figure, in: figures) {
                            value["floor"] = key
                            value["crossings"] = figure.crossings
                            value["medianOverFloor"] = ratio.median
                            value["p99OverFloorP99"] = ratio.p99
                        }
                        entry[figure.key] = value
                    }
                    return entry
                },
            ]
            if let idle { object["idleEnclaveCPUPercent"] = idle }
            return object
        }

        static func printTable(_ measured: [(Placement, [Figure])], idle: Double?) {
            print("enclave bench calls — round-trip latency in microseconds (\(CallFloor.availableCPUs) CPUs)")
            for (placement, figures) in measured {
                print("")
                print("\(placement.description):")
                print(
                    "name".padding(toLength: 40, withPad: " ", startingAt: 0)
                        + "      n     median        p99   p99/med   ×floor   switches/call host+enclave"
                )
                for figure in figures {
                    let row = figure.samples
                    var line =
                        figure.name.padding(toLength: 40, withPad: " ", startingAt: 0) + String(row.count).leftPadded(7)
                        + format(row.median).leftPadded(11) + format(row.p99).leftPadded(11)
                        + String(format: "%.1f", row.p99 / row.median).leftPadded(10)
                    if let ratio = ratio(figure, in: figures) {
                        line += String(format: "%.2f", ratio.median).leftPadded(9)
                    } else {
                        line += String(repeating: " ", count: 9)
                    }
                    if let switches = figure.switches {
                        line += String(format: "%.2f+%.2f", switches.host, switches.enclave).leftPadded(14)
                    }
                    if figure.crossings > 1 { line += " (per crossing)" }
                    print(line)
                }
            }
            print("")
            print(
                "targets: empty ECALL ≤ 2× floor, p99 ≤ 10× median; 1 MiB ECALL ≤ 1.2× the raw 1 MiB; OCALL ≤ 2× per crossing"
            )
            print("         switchless empty ECALL ≤ 0.5 µs and ≤ 3× the handoff; switchless 4 KiB ≤ 1.5 µs")
            print("switches/call: context switches per call of every thread of each process (a raw round trip: 1+1)")
            if let idle {
                print(
                    "idle enclave (\(switchlessSlots) switchless workers asleep): \(String(format: "%.2f", idle))% of one "
                        + "CPU over 1 s"
                )
            }
        }

        static func format(_ value: Double) -> String {
            String(format: value < 10 ? "%.2f" : "%.1f", value)
        }

        /// Switchless slots (and enclave workers) of the benchmark enclave.
        static let switchlessSlots = 2

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
            var switchless = Switchless(calls: [
                BenchCalls.SwitchlessNothing.name, BenchCalls.SwitchlessBytes.name, BenchCalls.SwitchlessWithOCall.name,
            ])
            options.ocalls.register(BenchCalls.SwitchlessHostNothing.self) { _ in Empty() }
            switchless.ocallSlots = 1
            switchless.ocalls = [BenchCalls.SwitchlessHostNothing.name]
            switchless.slots = switchlessSlots
            options.switchless = switchless
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

    typealias Operation = (name: String, every: Int, body: nonisolated(nonsending) () async throws -> Void)

    init(name: String, samples: [Double]) {
        let sorted = samples.sorted()
        self.name = name
        self.count = sorted.count
        self.median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        self.p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    }

    /// Run `rounds` rounds; in each, time every operation whose `every` divides the round number.
    static func interleaved(rounds: Int, _ operations: [Operation]) async throws -> [Row] {
        let samples = try await sample(rounds: rounds, operations)
        return zip(operations, samples).map { Row(name: $0.name, samples: $1) }
    }

    /// The raw samples of ``interleaved(rounds:_:)``, after a warm-up of a tenth of the rounds.
    static func sample(rounds: Int, _ operations: [Operation]) async throws -> [[Double]] {
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
        return samples
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
