internal import AttestationAPI
internal import Foundation
public import Hummingbird
public import HummingbirdCore
internal import HummingbirdTLS
public import Logging
public import NIOCore
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// The attestation service on HTTP (Hummingbird): MAA's data plane (`POST /attest/{type}`, `GET /certs`,
/// `/.well-known/openid-configuration`, `GET|PUT /policies/{type}`, `POST /policies/{type}:reset`), plus
/// `GET /challenge` and, when its host provides them, metrics at `/metrics`. Errors answer in MAA's shape
/// (``ServiceError``).
public enum AttestationServer {
    /// The largest request body accepted by default.
    public static let defaultMaxBodySize = 1 << 20
    /// The oldest `api-version` accepted.
    public static let minimumAPIVersion = "2020-10-01"

    /// The routes, for an application or for in-process tests: grouped by controller (`AttestController`,
    /// `MetadataController`, `PolicyController`, `MetricsController`). `/metrics` is served only when `metrics`
    /// is given: the library never bootstraps the metrics system, its host does (the CLI bootstraps Prometheus).
    public static func router(
        core: AttestationServiceCore,
        maxBodySize: Int = defaultMaxBodySize,
        metrics: MetricsExposition? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(LogRequestsMiddleware(.info))
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(APIVersionMiddleware())
        AttestController(core: core, maxBodySize: maxBodySize).addRoutes(to: router)
        MetadataController(core: core).addRoutes(to: router)
        PolicyController(core: core, maxBodySize: maxBodySize).addRoutes(to: router)
        CertificatesController(core: core, maxBodySize: maxBodySize).addRoutes(to: router)
        if let metrics { MetricsController(exposition: metrics).addRoutes(to: router) }
        return router
    }

    /// How long a connection may take to make progress before it is closed (see `ConnectionGuard`), and the
    /// HTTP head's size limits. The defaults suit an API whose requests are small and quick.
    public struct ConnectionLimits: Sendable {
        /// From the connection opening (TLS handshake included) to a complete first request head.
        public var headerTimeout: TimeAmount
        /// From a request head to the end of its body.
        public var bodyTimeout: TimeAmount
        /// From a response to the next request's complete head (keep-alive).
        public var idleTimeout: TimeAmount
        /// After a refused request's response (or a half-close), how long the client may take to read it before
        /// the connection is closed regardless.
        public var lingerTimeout: TimeAmount
        /// The largest header field (and request line); larger ones get a 400 and the connection closes.
        public var maxHeaderFieldSize: Int
        /// The largest header section.
        public var maxHeaderListSize: Int
        /// The most header fields.
        public var maxHeaderFieldCount: Int
        /// The rate (bytes per second) a body that takes longer than ``bodyTimeout`` must keep up: each body byte
        /// received moves the body's deadline 1/rate s later (nil: the body deadline is fixed). So a large body
        /// (a clean room data set) arriving at this rate is served whatever its size, while a trickle is still cut
        /// at ``bodyTimeout``; a body of at most `maxBodySize` earns at most `maxBodySize`/rate s.
        public var minimumBodyRate: Int?
        /// The most connections open at once; more wait in the listen backlog. Nil: half the process's descriptor
        /// limit, at most 1024, so that connections alone cannot exhaust the descriptors the store needs.
        public var maxConnections: Int?

        /// Limits with the defaults: 10 s for a request head, 30 s for a body, 60 s idle, 2 s linger, 16 KiB header
        /// fields, 64 KiB of headers, 100 header fields, and half the descriptor limit (at most 1024) connections.
        public init(
            headerTimeout: TimeAmount = .seconds(10),
            bodyTimeout: TimeAmount = .seconds(30),
            idleTimeout: TimeAmount = .seconds(60),
            lingerTimeout: TimeAmount = .seconds(2),
            maxHeaderFieldSize: Int = 16 << 10,
            maxHeaderListSize: Int = 64 << 10,
            maxHeaderFieldCount: Int = 100,
            maxConnections: Int? = nil,
            minimumBodyRate: Int? = nil
        ) {
            self.headerTimeout = headerTimeout
            self.bodyTimeout = bodyTimeout
            self.idleTimeout = idleTimeout
            self.lingerTimeout = lingerTimeout
            self.maxHeaderFieldSize = maxHeaderFieldSize
            self.maxHeaderListSize = maxHeaderListSize
            self.maxHeaderFieldCount = maxHeaderFieldCount
            self.maxConnections = maxConnections
            self.minimumBodyRate = minimumBodyRate.map { max(1, $0) }
        }

        /// ``maxConnections``, or its default from the descriptor limit.
        public var connectionLimit: Int {
            if let maxConnections { return max(1, maxConnections) }
            var limit = rlimit()
            guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 128 }
            return max(16, min(1024, Int(clamping: limit.rlim_cur) / 2))
        }
    }

    /// The HTTP/1.1 server with `limits` on every connection, over TLS with `tls` when given.
    public static func server(
        tls: TLSIdentity?,
        limits: ConnectionLimits = ConnectionLimits(),
        logger: Logger
    ) throws -> HTTPServerBuilder {
        let http1 = HTTPServerBuilder.http1(
            configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [ConnectionGuard(limits: limits, logger: logger)],
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: limits.maxHeaderFieldSize,
                    maxHeaderListSize: limits.maxHeaderListSize,
                    maxHeaderFieldCount: limits.maxHeaderFieldCount
                )
            )
        )
        guard let tls else { return http1 }
        return try .tls(http1, tlsConfiguration: try tls.serverConfiguration())
    }

    /// An application serving `core` on `host:port` (port 0: any free port, reported to `onServerRunning`), over
    /// HTTPS with `tls`, or plain HTTP when `tls` is nil (the caller decides when that is acceptable: the CLI allows
    /// it only on loopback and only when asked).
    public static func application(
        core: AttestationServiceCore,
        host: String = "127.0.0.1",
        port: Int = 8080,
        maxBodySize: Int = defaultMaxBodySize,
        tls: TLSIdentity? = nil,
        limits: ConnectionLimits = ConnectionLimits(),
        logger: Logger = Logger(label: "enclavekit.attestation"),
        metrics: MetricsExposition? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(core: core, maxBodySize: maxBodySize, metrics: metrics),
            server: try server(tls: tls, limits: limits, logger: logger),
            configuration: .init(
                address: .hostname(host, port: port),
                serverName: "EnclaveKit",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.connectionLimit, logger: logger)
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    static func attestationType(_ context: BasicRequestContext) throws -> AttestationType {
        let raw = context.parameters.get("type") ?? ""
        guard let type = AttestationType(pathComponent: raw) else {
            throw ServiceError.badRequest(
                "UnknownAttestationType",
                "unknown attestation type \(raw); one of "
                    + AttestationType.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        return type
    }

    /// The token of an `Authorization: Bearer …` header, if any.
    static func bearerToken(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        do {
            return Array(buffer: try await request.body.collect(upTo: limit))
        } catch {
            throw ServiceError.tooLarge("the request body is larger than \(limit) bytes")
        }
    }

    /// `value` as an `application/json` response, written by `JSONEncoder` (``AttestationAPI/WireJSON``).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        guard let bytes = try? WireJSON.encode(value) else {
            return ServiceError.internal("the response did not encode").response
        }
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// A JSON object of `members` as an `application/json` response.
    static func json(_ members: [String: TokenValue], status: HTTPResponse.Status = .ok) -> Response {
        json(TokenValue.object(members), status: status)
    }
}
