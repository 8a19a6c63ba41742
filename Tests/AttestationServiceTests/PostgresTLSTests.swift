import AttestationService
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A loopback listener that plays a PostgreSQL server without TLS: it answers the client's SSLRequest with `N`,
/// records the first bytes of each message, and closes.
final class NoTLSPostgres: Sendable {
    let port: Int
    private let listener: Int32
    private let received = Mutex<[[UInt8]]>([])
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        try #require(bound && listen(listener, 4) == 0)
        port = Int(UInt16(bigEndian: address.sin_port))
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in serve() }
    }

    /// The messages received (each up to its first 8 bytes), once the client is gone (bounded wait).
    func messages() -> [[UInt8]] {
        _ = done.wait(timeout: .now() + 15)
        return received.withLock { $0 }
    }

    private func serve() {
        defer {
            close(listener)
            done.signal()
        }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        for _ in 0..<2 {
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count >= 8 else { return }
            received.withLock { $0.append(Array(buffer[0..<8])) }
            // An SSLRequest (length 8, code 80877103): "no TLS here". Anything else: hang up.
            guard buffer[0..<8] == [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F] else { return }
            _ = "N".withCString { send(connection, $0, 1, Int32(MSG_NOSIGNAL)) }
        }
    }
}

@Suite("PostgreSQL store: TLS when offered, required when asked")
struct PostgresTLSTests {
    static let sslRequest: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]

    /// sslmode=require against a server without TLS: refused before any credentials or queries are sent.
    @Test func requireRefusesAServerWithoutTLS() async throws {
        let server = try NoTLSPostgres()
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(
                url: "postgres://enclavekit@127.0.0.1:\(server.port)/db?sslmode=require",
                password: "not-sent"
            )
        }
        #expect(refused?.code == "DatabaseTLSUnavailable", "\(String(describing: refused))")
        #expect(server.messages() == [Self.sslRequest], "only the SSLRequest may be sent")
    }

    /// By default the client asks for TLS first (libpq's `prefer`). Before: it never asked, the password went in
    /// the clear even to a server that offers TLS.
    @Test func defaultAsksForTLSFirst() async throws {
        let server = try NoTLSPostgres()
        await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(url: "postgres://enclavekit@127.0.0.1:\(server.port)/db")
        }
        #expect(server.messages().first == Self.sslRequest)
    }

    @Test func badSSLModeIsNamed() async throws {
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(url: "postgres://u@127.0.0.1:1/db?sslmode=sometimes")
        }
        #expect(refused?.code == "InvalidDatabaseURL")
        #expect(refused?.message.contains("verify-full") == true)
    }
}
