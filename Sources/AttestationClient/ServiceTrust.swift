internal import AsyncHTTPClient
internal import Crypto
internal import Foundation
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
internal import NIOTLS
internal import Synchronization

/// Which HTTPS server certificates the client accepts from the attestation service.
///
/// ``system`` uses the system's roots (a service behind a public CA). A service with its own or a self-signed
/// certificate is trusted with ``certificates(pem:)`` (a CA or the certificate itself, as `curl --cacert` does) or
/// by pinning the SHA-256 of its certificate (``pinned(sha256:)``, what `enclave serve attestation` prints on
/// start). With a pin, the client fetches the server's certificate once, accepts it only if its SHA-256 matches,
/// and then trusts exactly that certificate (names are not checked: the pin is the identity).
public struct ServiceTrust: Sendable, Hashable {
    enum Kind: Hashable {
        case system
        case certificates(pem: String)
        case pinned(sha256: [UInt8])

        /// The kind as a client cache key, built without `String(describing:)` (which reflected the PEM text on
        /// every request).
        var cacheKey: String {
            switch self {
            case .system: "system"
            case .certificates(let pem): "certificates:" + pem
            case .pinned(let digest): "pinned:" + digest.map { String($0, radix: 16) }.joined(separator: ":")
            }
        }
    }

    let kind: Kind

    /// The system's trust roots, with host name verification.
    public static let system = ServiceTrust(kind: .system)

    /// Trust the CA certificates (or the self-signed certificate) in `pem`, with host name verification.
    /// - Throws: ``AttestationClient/Failure`` `BadTrust` when `pem` holds no certificate.
    public static func certificates(pem: String) throws -> ServiceTrust {
        guard (try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))?.isEmpty == false else {
            throw AttestationClient.Failure(status: 0, code: "BadTrust", message: "no PEM certificate to trust")
        }
        return ServiceTrust(kind: .certificates(pem: pem))
    }

    /// Trust the CA certificates (or the self-signed certificate) in the PEM file at `path`.
    /// - Throws: ``AttestationClient/Failure`` `BadTrust` when the file can't be read or holds no certificate.
    public static func certificateFile(_ path: String) throws -> ServiceTrust {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AttestationClient.Failure(status: 0, code: "BadTrust", message: "cannot read \(path)")
        }
        do {
            return try certificates(pem: String(decoding: data, as: UTF8.self))
        } catch {
            throw AttestationClient.Failure(status: 0, code: "BadTrust", message: "\(path) holds no PEM certificate")
        }
    }

    /// Trust only the server certificate whose DER has this SHA-256 (64 hexadecimal digits, `:` allowed).
    /// - Throws: ``AttestationClient/Failure`` `BadTrust` when `hex` is not 32 bytes of hexadecimal.
    public static func pinned(sha256 hex: String) throws -> ServiceTrust {
        let digits = hex.lowercased().filter { $0 != ":" }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2, limitedBy: digits.endIndex) ?? digits.endIndex
            guard let byte = UInt8(digits[index..<next], radix: 16), digits.distance(from: index, to: next) == 2 else {
                bytes = []
                break
            }
            bytes.append(byte)
            index = next
        }
        guard bytes.count == 32 else {
            throw AttestationClient.Failure(
                status: 0,
                code: "BadTrust",
                message: "a SHA-256 pin is 64 hexadecimal digits"
            )
        }
        return ServiceTrust(kind: .pinned(sha256: bytes))
    }

    // MARK: HTTP clients

    /// One HTTP client per trust setting and endpoint, for the life of the process, like `HTTPClient.shared`.
    private static let clients = Mutex<[String: HTTPClient]>([:])

    /// The HTTP client to reach `endpoint` with this trust. Over HTTPS, the first use per endpoint makes one TLS
    /// handshake to check the server's certificate, so that an untrusted one fails at once with a clear error
    /// (AsyncHTTPClient's pool would retry it until the connect timeout).
    ///
    /// - Throws: ``AttestationClient/Failure`` `InsecureTransport` for `http://` to a host not on loopback.
    func httpClient(for endpoint: URL) async throws -> HTTPClient {
        try AttestationClient.checkTransport(endpoint)
        let host = endpoint.host ?? ""
        let port = endpoint.port ?? (endpoint.scheme?.lowercased() == "https" ? 443 : 80)
        let https = endpoint.scheme?.lowercased() == "https"
        let key = kind.cacheKey + "|\(host):\(port)"
        if let existing = Self.clients.withLock({ $0[key] }) { return existing }
        var tls: TLSConfiguration
        switch kind {
        case .system:
            tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if https { _ = try await Self.handshake(host: host, port: port, configuration: tls, pin: nil) }
        case .certificates(let pem):
            tls = try Self.configuration(trusting: NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)), hostnames: true)
            if https { _ = try await Self.handshake(host: host, port: port, configuration: tls, pin: nil) }
        case .pinned(let pin):
            guard https else {
                throw AttestationClient.Failure(
                    status: 0,
                    code: "CertificatePinMismatch",
                    message: "a certificate pin needs an https:// service URL"
                )
            }
            var probe = TLSConfiguration.makeClientConfiguration()
            probe.minimumTLSVersion = .tlsv12
            let certificate = try await Self.handshake(host: host, port: port, configuration: probe, pin: pin)
            tls = Self.configuration(trusting: [certificate], hostnames: false)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        // The service it was given and nowhere else: a redirect could lead from https to http or to another host,
        // with a bearer token or evidence (the answer is refused by name, `UnexpectedRedirect`).
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let (chosen, spare) = Self.clients.withLock { cache -> (HTTPClient, HTTPClient?) in
            if let existing = cache[key] { return (existing, client) }
            cache[key] = client
            return (client, nil)
        }
        try await spare?.shutdown()
        return chosen
    }

    static func configuration(trusting roots: [NIOSSLCertificate], hostnames: Bool) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .certificates(roots)
        tls.certificateVerification = hostnames ? .fullVerification : .noHostnameVerification
        return tls
    }

    /// One TLS handshake with `host:port`, returning the server's certificate. With `pin`, the certificate is
    /// accepted only if its SHA-256 is `pin` (and nothing else is checked); without, `configuration` verifies it.
    static func handshake(
        host: String,
        port: Int,
        configuration: TLSConfiguration,
        pin: [UInt8]?
    ) async throws -> NIOSSLCertificate {
        let context = try NIOSSLContext(configuration: configuration)
        let seen = SeenCertificate()
        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        let serverName = host.isEmpty || isAddress ? nil : host
        let eventLoop = HTTPClient.defaultEventLoopGroup.next()
        let done = eventLoop.makePromise(of: Void.self)
        do {
            let channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler: NIOSSLClientHandler
                        if let pin {
                            handler = try NIOSSLClientHandler(context: context, serverHostname: serverName) {
                                chain,
                                promise in
                                guard let leaf = chain.first, let der = try? leaf.toDERBytes(),
                                    Array(SHA256.hash(data: der)) == pin
                                else {
                                    promise.succeed(.failed)
                                    return
                                }
                                seen.value.withLock { $0 = leaf }
                                promise.succeed(.certificateVerified)
                            }
                        } else {
                            handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(done: done, seen: seen))
                    }
                }
                .connect(host: host, port: port).get()
            defer { channel.close(promise: nil) }
            try await done.futureResult.get()
        } catch {
            done.fail(ChannelError.ioOnClosedChannel)
            throw AttestationClient.Failure(
                status: 0,
                code: pin == nil ? "CertificateNotTrusted" : "CertificatePinMismatch",
                message: pin == nil
                    ? "\(host):\(port): TLS handshake failed or its certificate is not trusted: \(error)"
                    : "\(host):\(port) did not present the pinned certificate (SHA-256 pin): \(error)"
            )
        }
        guard let certificate = seen.value.withLock({ $0 }) else {
            throw AttestationClient.Failure(
                status: 0,
                code: pin == nil ? "CertificateNotTrusted" : "CertificatePinMismatch",
                message: "\(host):\(port) presented no certificate"
            )
        }
        return certificate
    }
}

/// The certificate a handshake saw, shared by the verification callback, the waiter and the caller.
private final class SeenCertificate: Sendable {
    let value = Mutex<NIOSSLCertificate?>(nil)
}

/// Completes `done` when the TLS handshake completes, or fails it with the first error or on close (once).
private final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let done: EventLoopPromise<Void>
    private let seen: SeenCertificate
    private var completed = false

    init(done: EventLoopPromise<Void>, seen: SeenCertificate) {
        self.done = done
        self.seen = seen
    }

    private func complete(_ result: Result<Void, any Error>) {
        guard !completed else { return }
        completed = true
        done.completeWith(result)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            if seen.value.withLock({ $0 }) == nil,
                let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            {
                let certificate = handler.peerCertificate
                seen.value.withLock { $0 = certificate }
            }
            complete(.success(()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }
}
