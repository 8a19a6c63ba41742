import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.2 that never accepts by itself: loopback to the kernel, but not one of the hosts the
/// project's clients take plain HTTP to (`127.0.0.1`, `localhost`, `::1`). A client that connects before it refuses
/// leaves the connection in the listener's backlog, where ``attempts()`` counts it, so "refused before any
/// connection" is checked by a count, not by a stopwatch that a loaded machine can run out.
public final class Tripwire: Sendable {
    /// The listening socket (non-blocking).
    public let fd: Int32
    /// The port the kernel chose.
    public let port: Int

    /// `http://127.0.0.2:PORT`: a plain-HTTP URL of a host that is not on the clients' loopback list.
    public var url: String { "http://127.0.0.2:\(port)" }

    /// Listen on 127.0.0.2 at a free port (the test fails when it can't).
    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0, "socket: errno \(errno)")
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.2")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening =
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            } == 0 && listen(fd, 64) == 0 && fcntl(fd, F_SETFL, O_NONBLOCK) == 0
            && withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            } == 0
        if !listening { Glibc.close(fd) }
        try #require(listening, "listen on 127.0.0.2: errno \(errno)")
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { Glibc.close(fd) }

    /// The connections made to it since the last call (each taken from the backlog and closed).
    public func attempts() -> Int {
        var count = 0
        while true {
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { return count }
            Glibc.close(connection)
            count += 1
        }
    }
}
