import AttestationService
import AttestationServicePostgres
import Foundation
import Testing

/// Review 6, finding A: the database connection defaulted to `sslmode=prefer`, and `prefer`, `allow` and `require`
/// never verify the server, so a fake server that answered "no TLS" and asked for a clear-text password got it. Now a
/// host that is not this machine's loopback gets `verify-full` by default and the unverified modes only with an
/// explicit override; loopback keeps libpq's behaviour.
@Suite("PostgreSQL connection: the server is verified off loopback")
struct PostgresVerifiedTLSTests {
    typealias Endpoint = PostgresServiceStore.Endpoint
    static let password = "pgtls-secret-7c41e9"

    /// The URL query for `mode`, with the CA file that `verify-ca` requires.
    static func query(_ mode: PostgresServiceStore.SSLMode) -> String {
        "?sslmode=\(mode.rawValue)" + (mode == .verifyCA ? "&sslrootcert=/etc/db-ca.pem" : "")
    }

    /// Whether `haystack` holds `needle` anywhere.
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains {
            haystack[$0..<($0 + needle.count)].elementsEqual(needle)
        }
    }

    /// The error `body` throws, if it is a ``ServiceError``.
    static func refusal(_ body: () throws -> Void) -> ServiceError? {
        do {
            try body()
            return nil
        } catch {
            return error as? ServiceError
        }
    }

    // MARK: Loopback: decided on the literal, never by resolving

    /// Loopback is `localhost` in any case, 127.0.0.0/8 as four decimal numbers, `::1` and `::ffff:127.x.y.z`.
    /// Every other spelling is another host even when it reaches this machine (`127.1`, octal or hex, `0.0.0.0`, a
    /// name that resolves to 127.0.0.1): the rule errs toward verifying and no DNS answer relaxes it.
    @Test(
        arguments: [
            ("127.0.0.1", true), ("127.255.3.9", true), ("localhost", true), ("LOCALHOST", true),
            ("LocalHost", true), ("[::1]", true), ("[0:0:0:0:0:0:0:1]", true), ("[::ffff:127.0.0.1]", true),
            ("%31%32%37.0.0.1", true),  // the URL's percent-encoding is decoded first: 127.0.0.1
            ("127.1", false), ("0x7f.0.0.1", false), ("0177.0.0.1", false), ("2130706433", false),
            ("127.0.0.01", false), ("127.0.0.1.", false), ("0.0.0.0", false), ("[::]", false), ("localhost.", false),
            ("localhost.localdomain", false), ("db.localhost", false), ("ip6-localhost", false), ("128.0.0.1", false),
            ("10.0.0.5", false), ("[::ffff:10.0.0.1]", false), ("[fe80::1%25lo]", false), ("db.example.com", false),
        ]
    )
    func loopbackIsTheLiteralOnly(host: String, loopback: Bool) throws {
        let endpoint = try Endpoint(url: "postgres://u@\(host):5432/db", password: nil)
        #expect(endpoint.isLoopback == loopback, "\(host)")
        #expect(endpoint.sslMode == (loopback ? .prefer : .verifyFull), "\(host): the default mode")
    }

    /// An IPv6 literal reaches PostgresNIO without the URL's brackets (before: `[::1]` was resolved as a name).
    @Test func ipv6BracketsAreRemoved() throws {
        #expect(try Endpoint(url: "postgres://u@[::1]:5433/db", password: nil).host == "::1")
        #expect(try Endpoint(url: "postgres://u@[::1]:5433/db", password: nil).port == 5433)
    }

    // MARK: Every mode, loopback and remote

    /// Toward loopback every mode is taken as written (tests and `.ci/run` use a local server without TLS).
    @Test(arguments: PostgresServiceStore.SSLMode.allCases)
    func loopbackTakesEveryMode(mode: PostgresServiceStore.SSLMode) throws {
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            let endpoint = try Endpoint(url: "postgres://u@\(host)/db" + Self.query(mode), password: nil)
            #expect(endpoint.sslMode == mode)
        }
    }

    /// Toward another host, `verify-ca` and `verify-full` are taken; `disable`, `allow`, `prefer` and `require` are
    /// refused by name unless `allowUnverifiedTLS`, and then taken as written. Failed before: all four connected.
    @Test(arguments: PostgresServiceStore.SSLMode.allCases)
    func remoteRefusesUnverifiedModes(mode: PostgresServiceStore.SSLMode) throws {
        for host in ["db.example.com", "10.0.0.5", "[2001:db8::1]", "127.1"] {
            let url = "postgres://u@\(host)/db" + Self.query(mode)
            if mode.verifiesServer {
                #expect(try Endpoint(url: url, password: nil).sslMode == mode)
            } else {
                let refused = Self.refusal { _ = try Endpoint(url: url, password: nil) }
                #expect(refused?.code == "InsecureDatabaseConnection", "\(url): \(String(describing: refused))")
                #expect(refused?.message.contains("sslmode=\(mode.rawValue)") == true)
                #expect(refused?.message.contains("--allow-unverified-database-tls") == true)
            }
            let allowed = try Endpoint(url: url, password: nil, allowUnverifiedTLS: true)
            #expect(allowed.sslMode == mode, "\(url) with the override")
        }
    }

    /// The override relaxes only what is written: without `sslmode` a remote host still gets `verify-full`.
    @Test func overrideKeepsTheVerifiedDefault() throws {
        let endpoint = try Endpoint(url: "postgres://u@db.example.com/db", password: nil, allowUnverifiedTLS: true)
        #expect(endpoint.sslMode == .verifyFull)
    }

    /// A CA file means the server is checked: without `sslmode` that is `verify-full` on loopback too, `require`
    /// becomes `verify-ca` (libpq's reading), and `disable`/`allow`/`prefer` beside it are refused. Failed before:
    /// loopback without a mode took `prefer` and `require` checked nothing, the file silently ignored (review 8).
    @Test func aRootFileIsNeverIgnored() throws {
        for host in ["127.0.0.1", "db.example.com"] {
            let plain = try Endpoint(url: "postgres://u@\(host)/db?sslrootcert=/etc/db-ca.pem", password: nil)
            #expect(plain.sslMode == .verifyFull, "\(host)")
            let required = try Endpoint(
                url: "postgres://u@\(host)/db?sslmode=require&sslrootcert=/etc/db-ca.pem",
                password: nil
            )
            #expect(required.sslMode == .verifyCA, "\(host)")
            #expect(required.rootCertificate == "/etc/db-ca.pem")
            for mode in ["disable", "allow", "prefer"] {
                let refused = Self.refusal {
                    _ = try Endpoint(
                        url: "postgres://u@\(host)/db?sslmode=\(mode)&sslrootcert=/etc/db-ca.pem",
                        password: nil,
                        allowUnverifiedTLS: true
                    )
                }
                #expect(refused?.code == "InvalidDatabaseURL", "\(host) \(mode)")
            }
        }
        // Without a file, loopback keeps its default.
        #expect(try Endpoint(url: "postgres://u@127.0.0.1/db", password: nil).sslMode == .prefer)
    }

    /// `sslrootcert=FILE` is the CA file; `sslrootcert=system` (libpq 16) is the system's roots and `verify-full`
    /// only; without it `verify-full` uses the system's roots, and `verify-ca` is refused (below).
    @Test func rootCertificates() throws {
        let file = try Endpoint(url: "postgres://u@db.example.com/db?sslrootcert=/etc/db-ca.pem", password: nil)
        #expect(file.rootCertificate == "/etc/db-ca.pem")
        #expect(file.sslMode == .verifyFull)
        let system = try Endpoint(url: "postgres://u@127.0.0.1/db?sslrootcert=system", password: nil)
        #expect(system.rootCertificate == nil)
        #expect(system.sslMode == .verifyFull, "system forces verify-full, even on loopback")
        #expect(
            try Endpoint(url: "postgres://u@db.example.com/db?sslmode=verify-full", password: nil).rootCertificate
                == nil
        )
        let verifyCA = try Endpoint(
            url: "postgres://u@db.example.com/db?sslmode=verify-ca&sslrootcert=/etc/db-ca.pem",
            password: nil
        )
        #expect(verifyCA.sslMode == .verifyCA)
        #expect(verifyCA.rootCertificate == "/etc/db-ca.pem")
        for mode in ["require", "verify-ca", "disable"] {
            let refused = Self.refusal {
                _ = try Endpoint(url: "postgres://u@127.0.0.1/db?sslrootcert=system&sslmode=\(mode)", password: nil)
            }
            #expect(refused?.code == "InvalidDatabaseURL", "\(mode)")
        }
    }

    /// Review 7: `verify-ca` checks no name, so against the system's roots any publicly trusted certificate would
    /// pass as the database and receive the password. Like libpq, it requires `sslrootcert=FILE`, on every host
    /// and with the override too, and the refusal names the fix. Failed before: accepted with the system's roots.
    @Test(
        arguments: [
            "postgres://u@db.example.com/db?sslmode=verify-ca", "postgres://u@10.0.0.5:5432/db?sslmode=verify-ca",
            "postgres://u@127.0.0.1/db?sslmode=verify-ca", "postgres://u@localhost/db?sslmode=verify-ca",
            "postgres://u@[::1]/db?sslmode=verify-ca",
        ]
    )
    func verifyCAWithoutRootFileIsRefused(url: String) {
        for override in [false, true] {
            let refused = Self.refusal { _ = try Endpoint(url: url, password: nil, allowUnverifiedTLS: override) }
            #expect(refused?.code == "InvalidDatabaseURL", "\(url): \(String(describing: refused))")
            #expect(refused?.message.contains("sslrootcert=FILE") == true, "names the fix")
            #expect(refused?.message.contains("verify-full") == true, "names the other fix")
        }
    }

    /// URLs that can't be used are refused by name: no host, a parameter twice (which one wins is not a guess we
    /// make), an empty `sslrootcert`, another scheme.
    @Test(
        arguments: [
            "postgres://u@/db", "postgres://u@db.example.com/db?sslmode=verify-full&sslmode=disable",
            "postgres://u@db.example.com/db?sslrootcert=", "mysql://u@127.0.0.1/db", "postgres://127.0.0.1/db",
        ]
    )
    func unusableURLsAreRefused(url: String) {
        let refused = Self.refusal { _ = try Endpoint(url: url, password: nil) }
        #expect(refused?.code == "InvalidDatabaseURL", "\(url): \(String(describing: refused))")
    }

    // MARK: Over a socket: the fake server of the finding

    /// The reviewer's attack, on a host the rule treats as remote (`127.1` reaches this machine's loopback but is not
    /// written as loopback): with no `sslmode` the store asks for TLS, the server says no, and the store hangs up
    /// before it sends the startup message, let alone the password. Failed before: the default was `prefer`, which
    /// went on without TLS and answered the clear-text password request.
    @Test func defaultTowardAnotherHostNeverSendsThePassword() async throws {
        let server = try ClearTextPasswordPostgres()
        server.start()
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(
                url: "postgres://enclavekit@127.1:\(server.port)/db",
                password: Self.password
            )
        }
        #expect(refused?.code == "DatabaseTLSUnavailable", "\(String(describing: refused))")
        #expect(refused?.message.contains("verify-full") == true)
        let received = server.received()
        #expect(received == [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F], "only the SSLRequest may be sent")
        #expect(!Self.contains(received, Array(Self.password.utf8)))
    }

    /// `sslmode=verify-full` on loopback against the same server: refused before any password is sent.
    @Test func verifyFullNeverSendsThePassword() async throws {
        let server = try ClearTextPasswordPostgres()
        server.start()
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(
                url: "postgres://enclavekit@127.0.0.1:\(server.port)/db?sslmode=verify-full",
                password: Self.password
            )
        }
        #expect(refused?.code == "DatabaseTLSUnavailable", "\(String(describing: refused))")
        #expect(!Self.contains(server.received(), Array(Self.password.utf8)))
    }

    /// An unverified mode toward another host is refused before any connection. Failed before: it connected (and
    /// with `prefer` sent the password in clear text to the server above).
    @Test func unverifiedModeTowardAnotherHostDoesNotConnect() async throws {
        let server = try ClearTextPasswordPostgres()
        let refused = await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(
                url: "postgres://enclavekit@127.1:\(server.port)/db?sslmode=prefer",
                password: Self.password
            )
        }
        #expect(refused?.code == "InsecureDatabaseConnection", "\(String(describing: refused))")
        #expect(!server.pendingConnection(), "no connection was attempted")
    }

    /// Controls: the fake server does catch a password from a client that gives it one, as `prefer` does on
    /// loopback (today's behaviour, kept) and toward another host with the explicit override. So the tests above
    /// would have seen a leak.
    @Test(
        arguments: [
            ("127.0.0.1", false), ("127.1", true),
        ]
    )
    func preferStillSendsThePasswordWhereAllowed(host: String, override: Bool) async throws {
        let server = try ClearTextPasswordPostgres()
        server.start()
        await #expect(throws: ServiceError.self) {
            _ = try await PostgresServiceStore.connect(
                url: "postgres://enclavekit@\(host):\(server.port)/db?sslmode=prefer",
                password: Self.password,
                allowUnverifiedTLS: override
            )
        }
        #expect(Self.contains(server.received(), Array(Self.password.utf8)))
    }
}
