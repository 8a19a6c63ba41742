internal import AttestationService
internal import Foundation
internal import NIOSSL
internal import PostgresNIO

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

extension PostgresServiceStore {
    /// A parsed connection URL and the TLS it asks for, after the rule that protects the password and the data on
    /// the network: a database on another host is reached with its certificate verified, or not at all.
    ///
    /// The database holds the token signing key, the policies, the broker's wrapped keys: whoever can pose as it,
    /// or read the password sent to it, can forge tokens. libpq's `prefer` (its default), `allow` and `require`
    /// never check the server's certificate, and `prefer` and `allow` fall back to no TLS when the server says so,
    /// after which the server may ask for the password in clear text. So:
    ///
    /// - Toward this machine's loopback (``isLoopback(host:)``) every mode is accepted and the default stays
    ///   libpq's `prefer`.
    /// - Toward any other host the default is `verify-full`, and `disable`, `allow`, `prefer` and `require` are
    ///   refused (`InsecureDatabaseConnection`) unless the caller passes `allowUnverifiedTLS` (the CLI's
    ///   `--allow-unverified-database-tls`).
    package struct Endpoint: Sendable {
        /// The host to connect to, an IPv6 literal without its brackets.
        package var host: String
        package var port: Int
        package var user: String
        package var password: String?
        package var database: String?
        /// The mode in force: the URL's `sslmode`, else the default for the host.
        package var sslMode: SSLMode
        /// The CA certificates (PEM file) that verify the server, `sslrootcert`; nil: the system's trust roots (never
        /// with `verify-ca`, which requires a file).
        package var rootCertificate: String?
        /// Whether ``host`` is this machine's loopback, which relaxes the rule.
        package var isLoopback: Bool

        /// Parse `url` and choose the TLS mode.
        ///
        /// - Parameters:
        ///   - url: `postgres://user[:password]@host[:port]/database[?sslmode=MODE&sslrootcert=FILE]`;
        ///     `sslrootcert=system` (as libpq 16) names the system's trust roots and makes `verify-full` the only mode;
        ///     `verify-ca` requires `sslrootcert=FILE` (as libpq), on every host.
        ///   - password: Taken over one in the URL.
        ///   - allowUnverifiedTLS: Accept `disable`, `allow`, `prefer` and `require` toward a host that is not
        ///     loopback: anyone on the path may then pose as the database and, below `require`, read the password.
        /// - Throws: `ServiceError` `InvalidDatabaseURL` for a URL that can't be used (`verify-ca` without
        ///   `sslrootcert=FILE` among them, whatever the host and `allowUnverifiedTLS`); `InsecureDatabaseConnection`
        ///   for a mode that does not verify the server toward a host other than loopback, without
        ///   `allowUnverifiedTLS`.
        package init(url: String, password: String?, allowUnverifiedTLS: Bool = false) throws {
            guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme),
                let urlHost = components.host, !urlHost.isEmpty, let user = components.user
            else {
                throw ServiceError.badRequest(
                    "InvalidDatabaseURL",
                    "expected postgres://user[:password]@host[:port]/database[?sslmode=MODE&sslrootcert=FILE]"
                )
            }
            // `[::1]`: the brackets belong to the URL, not the address (PostgresNIO would resolve them as a name).
            let host =
                urlHost.hasPrefix("[") && urlHost.hasSuffix("]") ? String(urlHost.dropFirst().dropLast()) : urlHost
            self.host = host
            self.port = components.port ?? 5432
            self.user = user
            self.password = password ?? components.password
            self.database = components.path.isEmpty ? nil : String(components.path.dropFirst())
            self.isLoopback = Self.isLoopback(host: host)
            var requested: SSLMode?
            var rootCertificate: String?
            var seen: Set<String> = []
            for item in components.queryItems ?? [] {
                guard seen.insert(item.name).inserted else {
                    throw ServiceError.badRequest(
                        "InvalidDatabaseURL",
                        "database URL parameter \(item.name) given twice"
                    )
                }
                switch item.name {
                case "sslmode":
                    guard let value = item.value.flatMap(SSLMode.init(rawValue:)) else {
                        throw ServiceError.badRequest(
                            "InvalidDatabaseURL",
                            "sslmode is one of " + SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                        )
                    }
                    requested = value
                case "sslrootcert":
                    guard let value = item.value, !value.isEmpty else {
                        throw ServiceError.badRequest(
                            "InvalidDatabaseURL",
                            "sslrootcert names a PEM file of CA certificates, or system"
                        )
                    }
                    rootCertificate = value
                default:
                    throw ServiceError.badRequest(
                        "InvalidDatabaseURL",
                        "unsupported database URL parameter \(item.name) (sslmode and sslrootcert are)"
                    )
                }
            }
            if rootCertificate == "system" {
                // libpq 16: the system's roots, and only with the mode that checks the name (any public CA would
                // otherwise vouch for any server).
                guard requested == nil || requested == .verifyFull else {
                    throw ServiceError.badRequest(
                        "InvalidDatabaseURL",
                        "sslrootcert=system goes with sslmode=verify-full (as in libpq), not \(requested?.rawValue ?? "")"
                    )
                }
                rootCertificate = nil
                requested = .verifyFull
            }
            if requested == .verifyCA, rootCertificate == nil {
                // libpq too: verify-ca checks no name, so against the system's roots any certificate a public CA
                // issued, for any name, would pass as the database (and receive the password). Everywhere, loopback
                // included: the mode means the same whatever the host.
                throw ServiceError.badRequest(
                    "InvalidDatabaseURL",
                    "sslmode=verify-ca needs sslrootcert=FILE (the PEM CA certificates that issue the database's "
                        + "certificate): it does not check the name, so with the system's roots any publicly trusted "
                        + "certificate would pass as the database. Add sslrootcert=FILE, or use sslmode=verify-full "
                        + "(which may use the system's roots)"
                )
            }
            if let rootCertificate {
                // A CA file says the server must be checked: with no mode that is verify-full on every host (loopback
                // included), `require` checks the chain against it as libpq does (verify-ca), and a mode that would
                // ignore it is a contradiction, refused rather than silently unverified (review 8).
                switch requested {
                case nil: requested = .verifyFull
                case .require?: requested = .verifyCA
                case .disable?, .allow?, .prefer?:
                    throw ServiceError.badRequest(
                        "InvalidDatabaseURL",
                        "sslrootcert=\(rootCertificate) with sslmode=\(requested?.rawValue ?? ""): that mode would not "
                            + "check the server against it. Use sslmode=verify-full (or verify-ca), or drop sslrootcert"
                    )
                case .verifyCA?, .verifyFull?: break
                }
            }
            self.rootCertificate = rootCertificate
            let mode = requested ?? (isLoopback ? .prefer : .verifyFull)
            self.sslMode = mode
            if !isLoopback, !allowUnverifiedTLS, !mode.verifiesServer {
                throw ServiceError.badRequest(
                    "InsecureDatabaseConnection",
                    "sslmode=\(mode.rawValue) toward \(host), which is not this machine's loopback (127.0.0.0/8 "
                        + "written a.b.c.d, ::1, localhost): the server's certificate would not be checked, so anyone "
                        + "on the path could pose as the database, which holds the signing key, "
                        + (mode == .require ? "and take the password. " : "and read the password in clear text. ")
                        + "Use sslmode=verify-full (the default there) with sslrootcert=CA.pem or the system's roots, "
                        + "or accept the risk explicitly (enclave: --allow-unverified-database-tls)"
                )
            }
        }

        /// Whether `host` is this machine's loopback: `localhost` (any case), an IPv4 address in 127.0.0.0/8 written
        /// as four decimal numbers, `::1` or `::ffff:127.x.y.z`. Nothing is resolved, and every other spelling is
        /// another host, even when it reaches loopback (`127.1`, `0x7f.0.0.1`, `0.0.0.0`, a name that resolves to
        /// 127.0.0.1): the rule errs toward verifying, and a DNS answer never relaxes it.
        package static func isLoopback(host: String) -> Bool {
            if host.lowercased() == "localhost" { return true }
            var v4 = in_addr()
            if inet_pton(AF_INET, host, &v4) == 1 {
                return UInt32(bigEndian: v4.s_addr) >> 24 == 127
            }
            var v6 = in6_addr()
            guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            let loopback: [UInt8] = Array(repeating: 0, count: 15) + [1]
            let mappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF, 127]
            return bytes == loopback || bytes.starts(with: mappedPrefix)
        }

        /// The TLS settings for `sslMode` (libpq's meaning: `prefer`/`require` encrypt without checking the
        /// certificate; `verify-ca` checks it against `sslrootcert`, `verify-full` against `sslrootcert` or the
        /// system's roots).
        func tlsConfiguration() -> TLSConfiguration {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            switch sslMode {
            case .disable, .allow, .prefer, .require:
                tls.certificateVerification = .none
            case .verifyCA:
                tls.certificateVerification = .noHostnameVerification
            case .verifyFull:
                // An IP address is checked against the certificate's IP SANs (NIOSSL, from the peer's address).
                tls.certificateVerification = .fullVerification
            }
            if let rootCertificate { tls.trustRoots = .file(rootCertificate) }
            return tls
        }

        func clientTLS() throws -> PostgresClient.Configuration.TLS {
            switch sslMode {
            case .disable: .disable
            case .allow, .prefer: .prefer(tlsConfiguration())
            case .require, .verifyCA, .verifyFull: .require(tlsConfiguration())
            }
        }

        func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
            switch sslMode {
            case .disable: return .disable
            case .allow, .prefer: return .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
            case .require, .verifyCA, .verifyFull: return .require(try NIOSSLContext(configuration: tlsConfiguration()))
            }
        }
    }
}

extension PostgresServiceStore.SSLMode {
    /// Whether the mode checks the server's certificate (`verify-ca`, `verify-full`).
    package var verifiesServer: Bool {
        switch self {
        case .disable, .allow, .prefer, .require: false
        case .verifyCA, .verifyFull: true
        }
    }
}
