@_exported public import EnclaveCore
internal import Foundation
internal import Synchronization
internal import _EnclaveChannel

#if canImport(Glibc)
internal import Glibc
#endif

/// Runs an ``EnclaveApplication`` inside the enclave process.
public enum EnclaveRuntime {
    /// The channel's frame limit; the host uses the same.
    static let maxFrameSize = 64 << 20

    /// Sandbox the process, handshake with the loader, construct `App`, and serve until the host goes away.
    /// Never returns: the process exits when the channel closes.
    ///
    /// Call it from `main` (``EnclaveApplication/main()`` does): it runs on the caller's thread, the main thread,
    /// which it keeps as the main actor's executor, and makes the enclave's workers Swift concurrency's global
    /// executor before anything else runs (see `EnclaveExecutors`).
    nonisolated(nonsending) public static func run<App: EnclaveApplication>(_ app: App.Type) async -> Never {
        guard Sandbox.isSocket(Sandbox.channelFD), Sandbox.isSocket(PlatformProtocol.channelFD) else {
            fail(
                "this program is an enclave image: start it with an EnclaveKit host (no channels on fds 3 and 4)",
                status: 2
            )
        }
        let mapped: [LaunchProtocol.Mapping]
        do {
            try Sandbox.makeUndumpable()
            Sandbox.tuneAllocator()
            Sandbox.installCrashReporter()
            mapped = Sandbox.mappings()
            try Sandbox.installFilter()
        } catch {
            fail("enclave sandbox: \(error.reason)", status: 3)
        }
        // From here on every job runs on the enclave's own threads; this thread drains the main actor's queue.
        EnclaveExecutors.install()
        Task.detached { await serve(App.self, mapped: mapped) }
        try? EnclaveExecutors.main.run()
        exit(0)
    }

    static func serve<App: EnclaveApplication>(_ app: App.Type, mapped: [LaunchProtocol.Mapping]) async -> Never {
        let table = TableBox()
        // The enclave announces where its threads run, so that each side spins for the other only across CPUs.
        let channel = FrameChannel(fd: Sandbox.channelFD, maxFrameSize: maxFrameSize, announcesPlacement: true)
        let handle: RPCPeer.Handler = { name, argument in
            guard let handler = table.state.withLock({ $0?.handlers[name] }) else {
                throw EnclaveError.unknownCall("the enclave has no call named \"\(name)\"")
            }
            return try await handler(argument)
        }
        let peer = RPCPeer(
            channel: channel,
            maxConcurrentRequests: 1024,
            handler: { name, argument in
                // The host asks for switchless calls (it passed the ring as fd 5): serve the ring's slots with the
                // same handlers, through the same concurrency limit.
                if name == SwitchlessRing.startCall {
                    try SwitchlessWorker.start(
                        argument: argument,
                        resolve: { name in
                            guard let handler = table.state.withLock({ $0?.switchlessHandler(name) }) else {
                                throw EnclaveError.unknownCall("the enclave has no call named \"\(name)\"")
                            }
                            return handler
                        },
                        pool: EnclaveExecutors.workers
                    )
                    return []
                }
                if name == SwitchlessRing.countersCall {
                    return try BinaryEncoder().encode(
                        SwitchlessWorker.current?.caller.counters ?? SwitchlessCaller.Counters()
                    )
                }
                return try await handle(name, argument)
            }
        )
        // The host reads nothing the enclave does not answer, so the channel's end means the host is gone or
        // closed us: nothing is left to serve.
        // The platform channel: keys and reports come from the platform, never through the host's channel.
        let platform = RPCPeer(
            channel: FrameChannel(fd: PlatformProtocol.channelFD, maxFrameSize: 64 << 10),
            maxConcurrentRequests: 1,
            handler: { name, _ in throw EnclaveError.unknownCall("the enclave serves no platform request \(name)") }
        )
        platform.start()
        let workers = EnclaveExecutors.workers
        workers.serve(
            reader: channel.makeReader(),
            onFrame: { frame, pool in peer.receive(frame, executor: pool) },
            onClose: { _ in exit(0) }
        )

        // Everything the enclave runs, start-up included, runs on its own workers (they are also the global
        // executor, so this preference only keeps the start-up's child tasks there explicitly).
        await withTaskExecutorPreference(workers) {
            await start(App.self, peer: peer, platform: platform, table: table, mapped: mapped)
        }
        withExtendedLifetime(workers) {}
        _ = await peer.closed()
        exit(0)
    }

    static func start<App: EnclaveApplication>(
        _ app: App.Type,
        peer: RPCPeer,
        platform: RPCPeer,
        table: TableBox,
        mapped: [LaunchProtocol.Mapping]
    ) async {
        let encoder = BinaryEncoder(maxMessageSize: maxFrameSize)
        let decoder = BinaryDecoder(maxMessageSize: maxFrameSize)
        do {
            let pid = getpid()
            let hello = LaunchProtocol.Hello(
                pid: pid,
                mappedFiles: Array(Set(mapped.map(\.path))).sorted(),
                sandboxed: true,
                mappings: mapped
            )
            let answer = try await peer.call(name: LaunchProtocol.helloCall, argument: encoder.encode(hello))
            let launch = try decoder.decode(LaunchProtocol.LaunchInfo.self, from: answer)
            // The identity sealing keys, joins and contract checks use is the platform's, never the host's word.
            let identity = try await measuredIdentity(
                claimed: launch.identity,
                platform: platform,
                encoder: encoder,
                decoder: decoder
            )
            let context = EnclaveContext(
                identity: identity,
                processID: pid,
                peer: peer,
                platform: platform,
                encoder: encoder,
                decoder: decoder
            )
            let application = try await App(context: context)
            var calls = ECallTable(encoder: encoder, decoder: decoder)
            application.register(&calls)
            let concurrency = AsyncLimiter(limit: Int(launch.maxThreads))
            var limited = calls
            for (name, handler) in calls.handlers {
                limited.handlers[name] = { argument in try await concurrency.run { try await handler(argument) } }
            }
            limited.limiter = concurrency
            table.state.withLock { $0 = limited }
            _ = try await peer.call(name: LaunchProtocol.readyCall, argument: encoder.encode(Empty()))
        } catch {
            fail("enclave start-up failed: \(error)", status: 4)
        }
    }

    static func fail(_ message: String, status: Int32) -> Never {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(status)
    }
}

/// The ECALL table, set once the application is constructed.
final class TableBox: Sendable {
    let state = Mutex<ECallTable?>(nil)
}
