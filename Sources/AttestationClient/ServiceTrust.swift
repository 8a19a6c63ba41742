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
    }

    let kind: Kind

    /// The system's trust roots, with host name verification.
    public static let system = ServiceTrust(kind: .system)

    /// Trust the CA certificates (or the self-signed certificate) in `pem`, with host name verification.
    public static func certificates(pem: String) throws -> ServiceTrust {
        guard (try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))?.isEmpty == false else {
            throw AttestationClient.Failure(status: 0, code: "BadTrust", message: "no PEM certificate to trust")
        }
        return ServiceTrust(kind: .certificates(pem: pem))
    }

    /// Trust the CA certificates (or the self-signed certificate) in the PEM file at `path`.
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

    /// One HTTP client per trust setting (and pinned endpoint), for the life of the process, like `HTTPClient.shared`.
    private static let clients = Mutex<[String: HTTPClient]>([:])

    /// The HTTP client to reach `endpoint` with this trust.
    func httpClient(for endpoint: URL) async throws -> HTTPClient {
        let tls: TLSConfiguration
        let key: String
        switch kind {
        case .system:
            return .shared
        case .certificates(let pem):
            key = "ca:" + SHA256.hash(data: Data(pem.utf8)).description
            if let existing = Self.clients.withLock({ $0[key] }) { return existing }
            tls = try Self.configuration(trusting: NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)), hostnames: true)
        case .pinned(let pin):
            let host = endpoint.host ?? ""
            let port = endpoint.port ?? 443
            key = "pin:\(pin):\(host):\(port)"
            if let existing = Self.clients.withLock({ $0[key] }) { return existing }
            let certificate = try await Self.fetchPinned(host: host, port: port, pin: pin)
            tls = Self.configuration(trusting: [certificate], hostnames: false)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
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

    /// Connect to `host:port`, and return the server's certificate if its SHA-256 is `pin`; fail otherwise.
    static func fetchPinned(host: String, port: Int, pin: [UInt8]) async throws -> NIOSSLCertificate {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: tls)
        let seen = Mutex<NIOSSLCertificate?>(nil)
        let serverName = host.isEmpty || host.first!.isNumber || host.contains(":") ? nil : host
        let eventLoop = HTTPClient.defaultEventLoopGroup.next()
        let done = eventLoop.makePromise(of: Void.self)
        do {
            let channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName) {
                            chain,
                            promise in
                            guard let leaf = chain.first, let der = try? leaf.toDERBytes(),
                                Array(SHA256.hash(data: der)) == pin
                            else {
                                promise.succeed(.failed)
                                return
                            }
                            seen.withLock { $0 = leaf }
                            promise.succeed(.certificateVerified)
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(done: done))
                    }
                }
                .connect(host: host, port: port).get()
            defer { channel.close(promise: nil) }
            try await done.futureResult.get()
        } catch {
            done.fail(ChannelError.ioOnClosedChannel)
            throw AttestationClient.Failure(
                status: 0,
                code: "CertificatePinMismatch",
                message: "\(host):\(port) did not present the pinned certificate (SHA-256 pin): \(error)"
            )
        }
        guard let certificate = seen.withLock({ $0 }) else {
            throw AttestationClient.Failure(
                status: 0,
                code: "CertificatePinMismatch",
                message: "\(host):\(port) did not present the pinned certificate"
            )
        }
        return certificate
    }
}

/// Completes `done` when the TLS handshake completes, or fails it with the first error or on close (once).
private final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let done: EventLoopPromise<Void>
    private var completed = false

    init(done: EventLoopPromise<Void>) { self.done = done }

    private func complete(_ result: Result<Void, any Error>) {
        guard !completed else { return }
        completed = true
        done.completeWith(result)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { complete(.success(())) }
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
