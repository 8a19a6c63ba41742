import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP connection to loopback that sends nothing (a flood's connection), closed when released: the connection-cap
/// tests of the key broker's and the clean room's servers.
public final class RawConnection: Sendable {
    /// The socket.
    public let fd: Int32

    /// Connect to 127.0.0.1:`port` (the test fails when it can't).
    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if connected != 0 { Glibc.close(fd) }
        try #require(connected == 0, "connect to 127.0.0.1:\(port): errno \(errno)")
    }

    deinit { Glibc.close(fd) }

    /// Whether `condition` holds within `seconds` (polled every 50 ms).
    public static func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    /// The server's own connections: sockets of this process whose local port is `port` (the listener excluded),
    /// from /proc/self/fd and /proc/net/tcp: the descriptors a client can make the server hold.
    public static func serverConnections(port: Int) -> Int {
        var inodes = Set<String>()
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = readProcFile(path) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9 else { continue }
                let local = fields[1].split(separator: ":")
                guard local.count == 2, Int(local[1], radix: 16) == port, fields[3] != "0A" else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        var count = 0
        for descriptor in descriptors {
            guard
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + descriptor),
                target.hasPrefix("socket:[")
            else { continue }
            if inodes.contains(String(target.dropFirst(8).dropLast())) { count += 1 }
        }
        return count
    }

    /// A /proc file read to its end (they report size 0 and come a page per read).
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        for _ in 0..<1024 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
