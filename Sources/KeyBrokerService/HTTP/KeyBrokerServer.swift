internal import AttestationAPI
public import AttestationService
internal import Foundation
public import Hummingbird
internal import HummingbirdCore
internal import KeyBroker
public import Logging
internal import NIOCore
internal import ServiceLifecycle

/// The key broker on HTTP (Hummingbird), shaped like Key Vault's keys API, served over HTTPS with the attestation
/// service's TLS identity, connection limits and administrator token (``KeyBrokerCore``).
///
/// Routes: `PUT|POST /keys/{name}/create`, `POST /keys/{name}/import`, `GET /keys`, `GET /keys/{name}[/{version}]`,
/// `GET /keys/{name}/versions`, `POST /keys/{name}/rotate`, `DELETE /keys/{name}`, `GET|DELETE /deletedkeys/{name}`,
/// `POST /deletedkeys/{name}/recover`, `PUT /keys/{name}/{version}/releasepolicy`,
/// `POST /keys/{name}/{version}/release` (no administrator: the token is the credential),
/// `POST /keys/{name}/{version}/unwrapkey`, `GET /attestation`, `GET /importkey`, `GET /audit`,
/// `GET /audit/refusals`,
/// `POST /replicas/join`, and with a counter store `GET /counters/{contract}` and
/// `POST /counters/{contract}/increment`. `api-version` query parameters are accepted and ignored.
public enum KeyBrokerServer {
    /// The largest request body accepted (256 KiB: a token, a policy or a wrapped key).
    public static let maxBodySize = 256 << 10

    /// The routes, for an application or in-process tests; with `counters`, clean rooms' rollback counters too
    /// (`GET /counters/{contract}`, `POST /counters/{contract}/increment`).
    public static func router(core: KeyBrokerCore, counters: (any CounterStore)? = nil) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(LogRequestsMiddleware(.info))
        router.middlewares.add(ErrorMiddleware(what: "the key broker"))
        KeysController(core: core).addRoutes(to: router)
        if let counters { CountersController(core: core, store: counters).addRoutes(to: router) }
        return router
    }

    /// An application serving `core` on `host:port` (0: any free port, reported to `onServerRunning`), over HTTPS
    /// with `tls` (plain HTTP when nil: the caller allows that only on loopback); with `counters`, clean rooms'
    /// rollback counters too.
    public static func application(
        core: KeyBrokerCore,
        counters: (any CounterStore)? = nil,
        host: String = "127.0.0.1",
        port: Int = 8443,
        tls: TLSIdentity?,
        limits: AttestationServer.ConnectionLimits = .init(),
        logger: Logger = Logger(label: "enclavekit.keybroker"),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(core: core, counters: counters),
            server: try AttestationServer.server(tls: tls, limits: limits, logger: logger),
            configuration: .init(
                address: .hostname(host, port: port),
                serverName: "EnclaveKit key broker",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.connectionLimit, logger: logger)
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// A broker running in this process until ``stop()``.
    public struct Running: Sendable {
        /// The port it listens on.
        public let port: Int
        let group: ServiceGroup
        let task: Task<Void, any Error>

        /// Shut down and wait until the server has stopped.
        public func stop() async {
            await group.triggerGracefulShutdown()
            _ = await task.result
        }
    }

    /// Start serving `core` on `host` at a free port and return once it listens; sets the core's base URL. With
    /// `counters`, clean rooms' rollback counters are served too. `limits` bound connections as the application's
    /// (at most `limits.connectionLimit` held at once).
    public static func start(
        core: KeyBrokerCore,
        counters: (any CounterStore)? = nil,
        host: String = "127.0.0.1",
        tls: TLSIdentity?,
        limits: AttestationServer.ConnectionLimits = .init(),
        logger: Logger = Logger(label: "enclavekit.keybroker")
    ) async throws -> Running {
        guard tls != nil || AttestationServer.isLoopback(host) else {
            throw ServiceError.badRequest("InsecureTransport", "plain HTTP is served only on loopback")
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try application(
            core: core,
            counters: counters,
            host: host,
            port: 0,
            tls: tls,
            limits: limits,
            logger: logger
        ) {
            continuation.yield($0)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw ServiceError.internal("the key broker did not start: \(await task.result)")
        }
        core.setBaseURL("\(tls == nil ? "http" : "https")://\(host):\(port)")
        return Running(port: port, group: group, task: task)
    }

    /// The token of an `Authorization: Bearer …` header, if any.
    static func bearerToken(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// The body decoded as `T`: at most ``maxBodySize`` bytes, unknown members refused, errors named.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, what: String) async throws -> T {
        try decode(T.self, try await body(request), what: what)
    }

    /// The body's bytes, at most ``maxBodySize``.
    static func body(_ request: Request) async throws -> [UInt8] {
        do {
            return Array(buffer: try await request.body.collect(upTo: maxBodySize))
        } catch {
            throw ServiceError.tooLarge("the request body is larger than \(maxBodySize) bytes")
        }
    }

    /// A release's parameters. The common body — a JSON object of string members `target` and optionally `nonce`
    /// and `enc`, nothing else — is read in one pass (`TokenJSON`, which is stricter than `JSONDecoder`: a member
    /// named twice, trailing bytes or an invalid escape are not read here); any other body goes through
    /// ``decode(_:_:what:)``, which answers exactly as before (the parameters, or the error naming what is wrong).
    static func decodeRelease(_ request: Request) async throws -> KeyReleaseParameters {
        let bytes = try await body(request)
        if let parameters = releaseParameters(bytes) { return parameters }
        return try decode(KeyReleaseParameters.self, bytes, what: "the release")
    }

    /// `bytes` as release parameters when they are the common body (see ``decodeRelease(_:)``), else nil.
    static func releaseParameters(_ bytes: [UInt8]) -> KeyReleaseParameters? {
        guard case .object(let members)? = try? TokenJSON.parse(bytes, maximumDepth: 2),
            case .string(let target)? = members["target"]
        else { return nil }
        var nonce: String?
        var enc: String?
        for (name, value) in members {
            switch (name, value) {
            case ("target", _): continue
            case ("nonce", .string(let text)): nonce = text
            case ("enc", .string(let text)): enc = text
            default: return nil
            }
        }
        return KeyReleaseParameters(target: target, nonce: nonce, enc: enc)
    }

    /// `bytes` decoded as `T`: unknown members refused, errors named.
    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        do {
            return try WireJSON.decode(T.self, from: bytes)
        } catch let error as DecodingError {
            throw ServiceError.badRequest("BadParameter", "\(what): \(describe(error))")
        } catch {
            throw ServiceError.badRequest("BadParameter", "\(what) is not JSON")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "$" : path
        }
        switch error {
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription.prefix(300))"
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing member \(parent == "$" ? "" : parent + ".")\(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)): wrong type"
        @unknown default: return "does not decode"
        }
    }

    /// A release's answer as an `application/json` response: the bytes ``json(_:status:)`` writes, without an
    /// encoder per release.
    static func json(_ result: KeyReleaseResult) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: answerText(result)))
        )
    }

    /// A release's answer as JSON text (``PlainJSON`` for the common JWS, else `TokenJSON`: the same bytes).
    static func answerText(_ result: KeyReleaseResult) -> String {
        PlainJSON.answer(result.value) ?? TokenJSON.text(.object(["value": .string(result.value)]))
    }

    /// `value` as an `application/json` response.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        guard let bytes = try? WireJSON.encode(value) else {
            return Response(status: .internalServerError)
        }
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }
}
