import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A loopback listener that plays the PostgreSQL server of review 6's finding A: it answers the SSLRequest with `N`
/// ("no TLS here"), then asks for the password in clear text (AuthenticationCleartextPassword) and keeps every byte
/// the client sends, so a test can say whether the password arrived. It serves one connection once ``start()`` is
/// called; ``pendingConnection()`` says, without serving, whether any client connected at all. Its waits are
/// generous and end as soon as the client sends or closes: nothing here bets on timing.
final class ClearTextPasswordPostgres: Sendable {
    let port: Int
    private let listener: Int32
    private let bytes = Mutex<[UInt8]>([])
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        (listener, port) = try Loopback.listener()
    }

    deinit { close(listener) }

    /// Serve one connection on a thread of its own.
    func start() {
        Thread.detachNewThread { [self] in
            defer { done.signal() }
            serve()
        }
    }

    /// Every byte received, once the client is gone (bounded wait).
    func received() -> [UInt8] {
        _ = done.wait(timeout: .now() + 120)
        return bytes.withLock { $0 }
    }

    /// Whether a client connected (the kernel completes the handshake without `accept`): accepts without waiting.
    /// Only for a server that was not started.
    func pendingConnection() -> Bool {
        let flags = fcntl(listener, F_GETFL)
        _ = fcntl(listener, F_SETFL, flags | O_NONBLOCK)
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return false }
        close(connection)
        return true
    }

    private func serve() {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Untyped messages first (SSLRequest, StartupMessage), then typed ones until the password message.
        var startedUp = false
        while true {
            var type: UInt8 = 0
            if startedUp {
                guard let byte = read(connection, count: 1) else { return }
                type = byte[0]
            }
            guard let header = read(connection, count: 4) else { return }
            let length = header.reduce(0) { $0 << 8 | Int($1) }
            guard (4...(1 << 16)).contains(length), let body = read(connection, count: length - 4) else { return }
            if startedUp {
                if type == UInt8(ascii: "p") { return }  // PasswordMessage: what the test is about; hang up
                continue
            }
            if body.starts(with: [0x04, 0xD2, 0x16, 0x2F]) {  // SSLRequest
                guard write(connection, [UInt8(ascii: "N")]) else { return }
            } else if body.starts(with: [0, 3, 0, 0]) {  // StartupMessage, protocol 3.0
                startedUp = true
                // AuthenticationCleartextPassword: 'R', length 8, code 3.
                guard write(connection, [UInt8(ascii: "R"), 0, 0, 0, 8, 0, 0, 0, 3]) else { return }
            } else {
                return
            }
        }
    }

    /// Exactly `count` bytes (kept in ``received()``), or nil at the end of the stream or a timeout.
    private func read(_ connection: Int32, count: Int) -> [UInt8]? {
        var result: [UInt8] = []
        while result.count < count {
            var buffer = [UInt8](repeating: 0, count: count - result.count)
            let got = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { return nil }
            result += buffer[0..<got]
            bytes.withLock { $0 += buffer[0..<got] }
        }
        return result
    }

    private func write(_ connection: Int32, _ message: [UInt8]) -> Bool {
        message.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == message.count
    }
}
