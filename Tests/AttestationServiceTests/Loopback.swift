import Foundation
import Hummingbird
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How this target's loopback fakes start listening: a raw TCP listener for the PostgreSQL servers that speak the
/// wire protocol by hand (``NoTLSPostgres``, ``ClearTextPasswordPostgres``), a Hummingbird server for the HTTP ones
/// (``FakePCCS``, `RedirectRefusalTests.LocalServer`). Both take a port the kernel chooses on 127.0.0.1.
enum Loopback {
    /// A TCP socket listening on 127.0.0.1 at a free port (backlog 4). Its `accept` gives up after 60 s: generous,
    /// as a loaded CI machine (the whole suite in parallel on two cores) connects late, and the wait ends as soon as
    /// a client connects. The test fails when it can't listen.
    static func listener() throws -> (fd: Int32, port: Int) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        let listening = bound && listen(listener, 4) == 0
        if !listening, listener >= 0 { close(listener) }
        try #require(listening, "listen on 127.0.0.1: errno \(errno)")
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (listener, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Serve `router` on 127.0.0.1 at a free port; returns once the server listens, with its port and the task that
    /// runs it (cancel the task to stop the server).
    static func serve(
        _ router: Router<BasicRequestContext>
    ) async throws -> (task: Task<Void, any Error>, port: Int) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }
        )
        let task = Task { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next()
        if port == nil {
            task.cancel()
            _ = await task.result
        }
        return (task, try #require(port, "the loopback server did not start"))
    }
}
