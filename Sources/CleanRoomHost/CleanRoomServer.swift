public import AttestationService
internal import CleanRoomInterface
internal import EnclaveCore
internal import Foundation
public import Hummingbird
internal import HummingbirdCore
public import Logging
internal import NIOCore
internal import ServiceLifecycle

/// The clean room host on HTTP (Hummingbird), served over HTTPS with the attestation service's TLS identity and
/// connection limits.
///
/// Routes: `GET /` (the status page), `GET /status` (JSON), `PUT /contract` and `GET /contract` (canonical bytes),
/// `POST /signatures`, `POST /halts` (canonical documents), `PUT /datasets/{name}` (an encrypted data file as
/// uploaded by its owner, signed by the owner in `X-Owner-Signature` over the SHA-256 declared in
/// `X-Upload-SHA256`; with `?key=NAME[&version=V]` the key broker
/// releases that key to the clean room and the data set loads), `POST /datasets/{name}/load` (`?key=NAME`: the same
/// release; otherwise the body is the key as a JWE to the enclave's key), `POST /queries` (a runner's signed query
/// request), `GET /results/{id}` and
/// `GET /receipts/{id}` (a run's encrypted result and receipt), `GET /attestation` (the enclave's runtime data and
/// evidence). Errors are
/// `{"error":{"code","message"}}`, the code naming the check that refused.
public enum CleanRoomServer {
    /// The largest request body other than a data set (1 MiB: a contract).
    public static let maxBodySize = 1 << 20

    /// The rate an upload must keep up once the 30 s body deadline passed: 1 MiB/s (8 Mbit/s), so a data set of the
    /// default 1 GiB limit has about 17 minutes, where the fixed 30 s cut any upload below 35 MB/s. Other bodies are
    /// at most ``maxBodySize`` and so earn at most a second; a connection held past 30 s costs its client 1 MiB/s
    /// of sending (and an upload's bytes reach the disk only once its owner's signature verified).
    public static let minimumUploadRate = 1 << 20

    /// The clean room's default connection limits: the attestation service's, with ``minimumUploadRate``.
    public static let defaultLimits = AttestationServer.ConnectionLimits(minimumBodyRate: minimumUploadRate)

    /// The routes, for an application or in-process tests.
    public static func router(host: CleanRoomHost) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(LogRequestsMiddleware(.info))
        router.middlewares.add(SecurityHeadersMiddleware())
        router.middlewares.add(ErrorMiddleware(what: "the clean room host"))
        router.get("/") { _, _ in
            let page = StatusPage.render(try await HostStatus.of(host))
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8",
                    .contentSecurityPolicy: StatusPage.contentSecurityPolicy,
                ],
                body: .init(byteBuffer: ByteBuffer(string: page))
            )
        }
        router.get("/status") { _, _ in json(try await HostStatus.of(host)) }
        router.put("/contract") { request, _ in
            let id = try await host.submitContract(try await collect(request, limit: maxBodySize))
            return json(["contractID": id.hex])
        }
        router.get("/contract") { _, _ in
            guard let bytes = try await host.store.contract() else {
                throw ServiceError.notFound("no contract was submitted yet")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
        router.post("/signatures") { request, _ in
            let state = try await host.submitSignature(try await collect(request, limit: maxBodySize))
            return json(["phase": state.phase.rawValue])
        }
        router.post("/halts") { request, _ in
            let answer = try await host.submitHalt(try await collect(request, limit: maxBodySize))
            var body = ["phase": answer.state.phase.rawValue]
            // The enclave's acknowledgement, base64url of its canonical bytes (`enclave cleanroom receipt
            // verify-halt` checks it); absent when the enclave was not open or refused (`refusal`).
            if let acknowledgement = answer.acknowledgement {
                body["acknowledgement"] = Base64URL.encode(acknowledgement)
            }
            if let refusal = answer.refusal { body["refusal"] = refusal }
            return json(body)
        }
        router.put("/datasets/{name}") { request, context in
            let name = try context.parameters.require("name")
            guard let signature = request.headers[.init(ownerSignatureHeader)!] else {
                throw ServiceError.badRequest(
                    "uploadSignature",
                    "an upload needs the data set owner's signature in \(ownerSignatureHeader)"
                )
            }
            // The declared digest the signature covers: checked before the body is read. A client without it (an
            // older build) is refused by name.
            guard let sha256 = request.headers[.init(uploadDigestHeader)!] else {
                throw ServiceError.badRequest(
                    "uploadDigest",
                    "an upload needs the SHA-256 of its body (hex) in \(uploadDigestHeader), the digest its owner signed"
                )
            }
            let record = try await host.storeDataSet(
                name: name,
                ownerSignature: signature,
                sha256: sha256,
                body: request.body
            )
            var answer = UploadAnswer(name: record.name, size: String(record.size), sha256: record.sha256, load: nil)
            if let key = request.uri.queryParameters["key"].map(String.init) {
                let version = request.uri.queryParameters["version"].map(String.init)
                answer.load = try await host.loadDataSet(name: name, brokerKey: key, version: version)
            }
            return json(answer)
        }
        router.post("/datasets/{name}/load") { request, context in
            let name = try context.parameters.require("name")
            if let key = request.uri.queryParameters["key"].map(String.init) {
                let version = request.uri.queryParameters["version"].map(String.init)
                return json(try await host.loadDataSet(name: name, brokerKey: key, version: version))
            }
            let body = try await collect(request, limit: CleanRoomLoadRequest.maxWrappedKeyBytes)
            let wrapped = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return json(try await host.loadDataSet(name: name, wrappedKey: wrapped))
        }
        router.post("/queries") { request, _ in
            let body = try await collect(request, limit: CleanRoomQueryRequest.maxRequestBytes)
            guard let query = try? JSONDecoder().decode(CleanRoomQueryRequest.self, from: Data(body)) else {
                throw ServiceError.badRequest("malformed", "the body is not a query request")
            }
            return json(try await host.runQuery(query))
        }
        router.get("/results/{id}") { _, context in
            let run = try await host.storedRun(try context.parameters.require("id"))
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: .init(bytes: run.result))
            )
        }
        router.get("/receipts/{id}") { _, context in
            let run = try await host.storedRun(try context.parameters.require("id"))
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: .init(bytes: run.receipt))
            )
        }
        router.get("/attestation") { _, _ in
            let opened = try await host.attestation()
            return json(AttestationDocument(opened))
        }
        return router
    }

    /// An application serving `host` on `address:port` (0: any free port, reported to `onServerRunning`), over
    /// HTTPS with `tls` (plain HTTP when nil: the caller allows that only on loopback).
    public static func application(
        host: CleanRoomHost,
        address: String = "127.0.0.1",
        port: Int = 8444,
        tls: TLSIdentity?,
        limits: AttestationServer.ConnectionLimits = defaultLimits,
        logger: Logger = Logger(label: "enclavekit.cleanroom"),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(host: host),
            server: try AttestationServer.server(tls: tls, limits: limits, logger: logger),
            configuration: .init(
                address: .hostname(address, port: port),
                serverName: "EnclaveKit clean room",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.connectionLimit, logger: logger)
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// A host serving in this process until ``stop()``.
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

    /// Start serving `host` on `address` at a free port and return once it listens, within `limits` (connections
    /// held at once included).
    public static func start(
        host: CleanRoomHost,
        address: String = "127.0.0.1",
        tls: TLSIdentity?,
        limits: AttestationServer.ConnectionLimits = defaultLimits,
        logger: Logger = Logger(label: "enclavekit.cleanroom")
    ) async throws -> Running {
        guard tls != nil || AttestationServer.isLoopback(address) else {
            throw ServiceError.badRequest("InsecureTransport", "plain HTTP is served only on loopback")
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try application(host: host, address: address, port: 0, tls: tls, limits: limits, logger: logger) {
            continuation.yield($0)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw ServiceError.internal("the clean room host did not start: \(await task.result)")
        }
        return Running(port: port, group: group, task: task)
    }

    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        do {
            return Array(buffer: try await request.body.collect(upTo: limit))
        } catch {
            throw ServiceError.tooLarge("the request body is larger than \(limit) bytes")
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let bytes = try? encoder.encode(value) else { return Response(status: .internalServerError) }
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// The header carrying a data set owner's upload signature (`DataSetUploadSigning`, base64url).
    public static let ownerSignatureHeader = "X-Owner-Signature"

    /// The header carrying the SHA-256 (lower-case hex) of an upload's body, which the owner's signature covers: the
    /// host verifies the signature before it reads the body, then compares the body's digest.
    public static let uploadDigestHeader = CleanRoomHost.uploadDigestName

    /// The answer to an upload: the stored file and, when a broker key was named, the enclave's load report.
    struct UploadAnswer: Encodable {
        let name: String
        let size: String
        let sha256: String
        var load: CleanRoomLoadReport?
    }

    /// `GET /attestation`: what to send to the attestation service (runtime data as base64url, the evidence).
    struct AttestationDocument: Encodable {
        let contractID: String
        let runtimeData: String
        let evidence: AttestationEvidence

        init(_ opened: CleanRoomOpened) {
            contractID = opened.contractID
            runtimeData = Base64URL.encode(opened.runtimeData)
            evidence = opened.evidence
        }
    }

    /// Headers on every answer: no sniffing, no caching, no referrer, no framing.
    struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
        func handle(
            _ request: Request,
            context: Context,
            next: (Request, Context) async throws -> Response
        ) async throws -> Response {
            var response = try await next(request, context)
            response.headers[.xContentTypeOptions] = "nosniff"
            response.headers[.cacheControl] = "no-store"
            response.headers[.init("Referrer-Policy")!] = "no-referrer"
            response.headers[.init("X-Frame-Options")!] = "DENY"
            return response
        }
    }

}
