import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// `bench keybroker`'s served client: one keep-alive HTTP/1.1 connection over TLS per client (NIO and NIOSSL, the
/// broker's certificate as the only trust root), one request at a time on it (no pipelining), each answer read to
/// its end and checked (status 200 and a `{"value":"…"}` body) before the next request is sent. Runs on an event
/// loop group of its own, so that its threads' CPU time can be told apart from the broker's.
struct BenchReleaseClient: Sendable {
    /// The thread name prefix of the client's event loop (`MultiThreadedEventLoopGroup`'s threads).
    static let threadPrefix = "NIO-ELT-"

    let group: MultiThreadedEventLoopGroup
    let context: NIOSSLContext
    let host: String
    let port: Int

    /// A client of the broker at `host:port` trusting only `certificatePEM`.
    init(host: String, port: Int, certificatePEM: String) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)))
        self.context = try NIOSSLContext(configuration: tls)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.host = host
        self.port = port
    }

    func shutdown() async {
        try? await group.shutdownGracefully()
    }

    /// The request bytes of one release of `name`/`version` with `body` (a `KeyReleaseParameters` JSON).
    func request(path: String, body: [UInt8]) -> (head: HTTPRequestHead, body: ByteBuffer) {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.count))
        return (head, ByteBuffer(bytes: body))
    }

    /// Opens one connection and sends `requests[i % count]` (i = `first`, `first + stride`, …) one after the other
    /// until `deadline`; answers each request's latency in milliseconds.
    func run(
        requests: [(head: HTTPRequestHead, body: ByteBuffer)],
        first: Int,
        stride: Int,
        deadline: Date
    ) async throws -> [Double] {
        let context = self.context
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: nil)
                    )
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        let prefix = Array(#"{"value":""#.utf8)
        return try await channel.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            var times: [Double] = []
            var index = first
            while Date() < deadline {
                let began = DispatchTime.now().uptimeNanoseconds
                let request = requests[index % requests.count]
                try await outbound.write(contentsOf: [.head(request.head), .body(.byteBuffer(request.body)), .end(nil)])
                var status: HTTPResponseStatus?
                var body = ByteBuffer()
                reading: while let part = try await parts.next() {
                    switch part {
                    case .head(let head): status = head.status
                    case .body(var bytes): body.writeBuffer(&bytes)
                    case .end: break reading
                    }
                }
                guard status == .ok, body.readableBytesView.starts(with: prefix) else {
                    throw RuntimeFailure(
                        message: "served release failed: \(status.map { "\($0.code)" } ?? "connection closed") "
                            + String(decoding: body.readableBytesView.prefix(300), as: UTF8.self)
                    )
                }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - began) / 1e6)
                index += stride
            }
            return times
        }
    }
}
