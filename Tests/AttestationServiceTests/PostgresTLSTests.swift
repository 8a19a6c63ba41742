import AttestationService
import AttestationServicePostgres
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A loopback listener that plays a PostgreSQL server without TLS: it answers the client's SSLRequest with `N`,
/// records the first bytes of each message, and closes. Its waits are generous (they end as soon as the client
/// connects, sends or closes): a loaded CI machine (the whole suite in parallel on two cores) connects late.
final class NoTLSPostgres: Sendable {
    let port: Int
    private let listener: Int32
    private let received = Mutex<[[UInt8]]>([])
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        (listener, port) = try Loopback.listener()
        Thread.detachNewThread { [self] in serve() }
    }

    /// The messages received (each up to its first 8 bytes), once the client is gone (bounded wait).
    func messages() -> [[UInt8]] {
        _ = done.wait(timeout: .now() + 120)
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
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
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
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(url: "postgres://enclavekit@127.0.0.1:\(server.port)/db")
        }
        #expect(refused?.code == "DatabaseUnavailable", "\(String(describing: refused))")
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

/// Against the private PostgreSQL cluster `Scripts/test-postgres.sh` starts (`.ci/run` runs the tests under it): the
/// server offers TLS, and its user `enclavekit_tls` may connect only over TLS (`hostssl`), so a store that opens as
/// that user has used TLS. Skipped, with this reason, when no cluster was started.
@Suite(
    "PostgreSQL store against a real server offering TLS",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_TLS_URL"] != nil,
        "needs the private PostgreSQL cluster of Scripts/test-postgres.sh (ENCLAVEKIT_TEST_POSTGRES_TLS_URL)"
    )
)
struct PostgresRealTLSTests {
    static var url: String { ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_TLS_URL"] ?? "" }
    static var ca: String { ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_CA"] ?? "" }

    /// The default (`prefer`) and `require` both negotiate TLS with a server that offers it.
    @Test(arguments: ["", "?sslmode=prefer", "?sslmode=require"])
    func tlsIsUsedWhenOffered(_ query: String) async throws {
        let store = try await PostgresServiceStore.connect(url: Self.url + query)
        try await store.migrate()
        try await store.close()
    }

    /// `verify-full` with the server's certificate as root succeeds; with another root it is refused.
    @Test func verifyFullChecksTheServerCertificate() async throws {
        let store = try await PostgresServiceStore.connect(
            url: Self.url + "?sslmode=verify-full&sslrootcert=\(Self.ca)"
        )
        try await store.close()

        let otherRoot = FileManager.default.temporaryDirectory.appendingPathComponent("other-root-\(getpid()).pem")
        defer { try? FileManager.default.removeItem(at: otherRoot) }
        let intelRoot = Data(try Vectors.bytes("intel-pki/phala-dcap-qvl/TrustedRootCA.der"))
        let pem =
            "-----BEGIN CERTIFICATE-----\n" + intelRoot.base64EncodedString(options: .lineLength64Characters)
            + "\n-----END CERTIFICATE-----\n"
        try pem.write(to: otherRoot, atomically: true, encoding: .utf8)
        await #expect(throws: (any Error).self) {
            let store = try await PostgresServiceStore.connect(
                url: Self.url + "?sslmode=verify-full&sslrootcert=\(otherRoot.path)"
            )
            try? await store.close()
        }
    }

    /// `verify-ca` with the server's certificate as root succeeds, and without `sslrootcert` is refused before any
    /// connection (review 7); the system's roots (no `sslrootcert`, or `sslrootcert=system`) don't hold that
    /// self-signed certificate, so `verify-full` is refused by the server check.
    @Test func verifyCAAndTheSystemRoots() async throws {
        let store = try await PostgresServiceStore.connect(url: Self.url + "?sslmode=verify-ca&sslrootcert=\(Self.ca)")
        try await store.close()
        let noRoot = await #expect(throws: ServiceError.self) {
            let store = try await PostgresServiceStore.connect(url: Self.url + "?sslmode=verify-ca")
            try? await store.close()
        }
        #expect(noRoot?.code == "InvalidDatabaseURL", "\(String(describing: noRoot))")
        for query in ["?sslmode=verify-full", "?sslrootcert=system"] {
            let refused = await #expect(throws: ServiceError.self, "\(query)") {
                let store = try await PostgresServiceStore.connect(url: Self.url + query)
                try? await store.close()
            }
            #expect(refused?.code == "DatabaseUnavailable", "\(query): \(String(describing: refused))")
        }
    }

    /// Control: `sslmode=disable` does not use TLS, so the TLS-only user is rejected by the server.
    @Test func withoutTLSTheServerRefusesTheTLSOnlyUser() async throws {
        let refused = await #expect(throws: ServiceError.self) {
            let store = try await PostgresServiceStore.connect(url: Self.url + "?sslmode=disable")
            try? await store.close()
        }
        #expect(refused?.code == "DatabaseUnavailable", "\(String(describing: refused))")
    }
}
