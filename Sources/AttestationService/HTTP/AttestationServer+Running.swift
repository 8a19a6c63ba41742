public import Logging
internal import ServiceLifecycle

extension AttestationServer {
    /// A service running in this process (a demo, a benchmark) until ``stop()``.
    public struct Running: Sendable {
        /// The port it listens on.
        public let port: Int
        let group: ServiceGroup
        let task: Task<Void, any Error>

        /// Shut down gracefully and wait until the server has stopped.
        public func stop() async {
            await group.triggerGracefulShutdown()
            _ = await task.result
        }
    }

    /// Start serving `core` on `host` at a free port, and return once it listens: over HTTPS with `tls`, else plain
    /// HTTP, which is refused on an address other than loopback; `/metrics` is served from `metrics` when given.
    public static func start(
        core: AttestationServiceCore,
        host: String = "127.0.0.1",
        maxBodySize: Int = defaultMaxBodySize,
        tls: TLSIdentity? = nil,
        limits: ConnectionLimits = ConnectionLimits(),
        logger: Logger = Logger(label: "enclavekit.attestation"),
        metrics: MetricsExposition? = nil
    ) async throws -> Running {
        guard tls != nil || isLoopback(host) else {
            throw ServiceError.badRequest(
                "InsecureTransport",
                "plain HTTP is served only on loopback; give a TLS identity to serve on \(host)"
            )
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try application(
            core: core,
            host: host,
            port: 0,
            maxBodySize: maxBodySize,
            tls: tls,
            limits: limits,
            logger: logger,
            metrics: metrics
        ) {
            continuation.yield($0)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw ServiceError.internal("the attestation service did not start: \(await task.result)")
        }
        return Running(port: port, group: group, task: task)
    }
}

extension AttestationServer {
    /// Whether `host` is a loopback address or `localhost` (where plain HTTP may be served).
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
