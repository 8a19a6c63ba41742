internal import AttestationClient
internal import Foundation
public import Hummingbird
public import HummingbirdCore
internal import HummingbirdTLS
public import Logging
internal import Metrics
public import NIOCore
internal import Prometheus
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// The attestation service on HTTP (Hummingbird): MAA's data plane (`POST /attest/{type}`, `GET /certs`,
/// `/.well-known/openid-configuration`, `GET|PUT /policies/{type}`, `POST /policies/{type}:reset`), plus
/// `GET /challenge` and Prometheus metrics at `/metrics`. Errors answer in MAA's shape.
public enum AttestationServer {
    /// The largest request body accepted by default.
    public static let defaultMaxBodySize = 1 << 20
    /// The oldest `api-version` accepted.
    public static let minimumAPIVersion = "2022-08-01"

    /// The process-wide Prometheus registry, bootstrapped once.
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// The routes, for an application or for in-process tests.
    public static func router(
        core: AttestationServiceCore,
        maxBodySize: Int = defaultMaxBodySize
    ) -> Router<BasicRequestContext> {
        _ = registry
        let router = Router()
        router.middlewares.add(LogRequestsMiddleware(.info))
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(APIVersionMiddleware())

        router.post("/attest/:type") { request, context -> Response in
            let type = try attestationType(context)
            let body = try await collect(request, limit: maxBodySize)
            let parsed = try AttestRequestParser.parse(body, type: type)
            let token = try await core.attest(type: type, request: parsed)
            return json(["token": .string(token)])
        }
        router.get("/certs") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: core.signer.jwksJSON))
            )
        }
        router.get("/.well-known/openid-configuration") { _, _ -> Response in
            json([
                "issuer": .string(core.issuer),
                "jwks_uri": .string(core.issuer + "/certs"),
                "id_token_signing_alg_values_supported": .array([.string("ES256")]),
                "response_types_supported": .array([.string("token")]),
                "claims_supported": .array(
                    ["x-ms-attestation-type", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-runtime", "nonce"].map(
                        TokenValue.string
                    )
                ),
            ])
        }
        router.get("/challenge") { _, _ -> Response in
            let challenge = try await core.challenge()
            return json([
                "nonce": .string(challenge.nonce),
                "expiresAt": .integer(Int(challenge.expires.timeIntervalSince1970)),
            ])
        }
        PolicyController(core: core, maxBodySize: maxBodySize).addRoutes(to: router)
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        return router
    }

    /// How long a connection may take to make progress before it is closed (see ``ConnectionGuard``), and the
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
        /// The most connections open at once; more wait in the listen backlog. Nil: half the process's descriptor
        /// limit, at most 1024, so that connections alone cannot exhaust the descriptors the store needs.
        public var maxConnections: Int?

        public init(
            headerTimeout: TimeAmount = .seconds(10),
            bodyTimeout: TimeAmount = .seconds(30),
            idleTimeout: TimeAmount = .seconds(60),
            lingerTimeout: TimeAmount = .seconds(2),
            maxHeaderFieldSize: Int = 16 << 10,
            maxHeaderListSize: Int = 64 << 10,
            maxHeaderFieldCount: Int = 100,
            maxConnections: Int? = nil
        ) {
            self.headerTimeout = headerTimeout
            self.bodyTimeout = bodyTimeout
            self.idleTimeout = idleTimeout
            self.lingerTimeout = lingerTimeout
            self.maxHeaderFieldSize = maxHeaderFieldSize
            self.maxHeaderListSize = maxHeaderListSize
            self.maxHeaderFieldCount = maxHeaderFieldCount
            self.maxConnections = maxConnections
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
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(core: core, maxBodySize: maxBodySize),
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

    static func json(_ object: [String: TokenValue], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: TokenValue.object(object).description))
        )
    }
}

/// Turns every error into MAA's `{"error":{"code":…,"message":…}}` with its status; unexpected errors become a 500
/// without internals.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServiceError {
            return Self.response(error)
        } catch let error as HTTPError {
            let status = Int(error.status.code)
            let code = status == 404 ? "NotFound" : status == 413 ? "RequestTooLarge" : "HTTP\(status)"
            return Self.response(
                ServiceError(status: status, code: code, message: error.body ?? error.status.reasonPhrase)
            )
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return Self.response(.internal("the service failed to process the request"))
        }
    }

    static func response(_ error: ServiceError) -> Response {
        Response(
            status: HTTPResponse.Status(code: error.status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: error.body))
        )
    }
}

/// MAA's `api-version` query parameter: optional here, but a version older than 2022-08-01 is refused.
struct APIVersionMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let version = request.uri.queryParameters["api-version"].map(String.init) {
            let datePart = String(version.prefix(10))
            guard datePart.count == 10, datePart >= AttestationServer.minimumAPIVersion else {
                throw ServiceError.badRequest(
                    "UnsupportedApiVersion",
                    "api-version \(version) is not supported; use \(AttestationServer.minimumAPIVersion) or later"
                )
            }
        }
        return try await next(request, context)
    }
}
