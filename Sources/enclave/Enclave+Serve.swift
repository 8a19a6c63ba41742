import ArgumentParser
import Attestation
import AttestationService
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import KeyBrokerInterface
import Logging
import NIOCore
import X509

#if Postgres
import AttestationServicePostgres
#endif

extension EnclaveCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a service.",
            discussion: """
                With no sub-command, runs the attestation service (https://127.0.0.1:8080, accepting this machine's \
                simulated enclaves) and the key broker (https://127.0.0.1:8443, trusting that attestation service) \
                in one process, on embedded defaults: for development.
                """,
            subcommands: [Attestation.self, KeyBroker.self]
        )

        func run() async throws {
            let logger = Logger(label: "enclavekit.serve")
            let attestation = try Attestation.parse(["--allow-simulated"])
            let prepared = try await attestation.prepare(logger: logger)
            let broker: KeyBrokerLaunch
            do {
                let authority = BrokerAuthority(
                    url: prepared.core.issuer,
                    certificates: try KeyBroker.certificates(jwks: prepared.core.signer.jwksJSON)
                )
                let options = try KeyBroker.parse([])
                let dataDirectory = KeyBroker.defaultDataDirectory()
                broker = try await KeyBrokerLaunch.start(
                    dataDirectory: dataDirectory,
                    host: options.host,
                    port: options.port,
                    authorities: [authority],
                    enclavePath: nil,
                    debugEnclave: false,
                    adminTokenFile: nil,
                    tls: try options.tlsIdentity(dataDirectory: dataDirectory, logger: logger),
                    logger: logger
                )
            } catch {
                try? await prepared.store.close()
                throw error
            }
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await Attestation.serve(prepared.app, host: attestation.host, port: attestation.port)
                    }
                    group.addTask { try await Attestation.serve(broker.app, host: "127.0.0.1", port: 8443) }
                    // When either stops (a signal, a failure), stop the other.
                    try await group.next()
                    group.cancelAll()
                }
            } catch {
                await broker.close()
                try? await prepared.store.close()
                throw error
            }
            await broker.close()
            try await prepared.store.close()
        }

        struct Attestation: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run the MAA-compatible attestation service.",
                discussion: """
                    Starts with no set-up: SQLite in the data directory, a token signing key and its certificate \
                    created on first start. With --database, instances sharing one PostgreSQL share keys and policies. \
                    Stops gracefully on SIGINT or SIGTERM.
                    """
            )

            @Option(help: "Address to listen on.")
            var host = "127.0.0.1"

            @Option(help: "Port to listen on (0: any free port).")
            var port = 8080

            @Option(
                help: "Data directory for the embedded SQLite store (default: $XDG_DATA_HOME/enclavekit/attestation)."
            )
            var dataDir: String?

            @Option(
                help: """
                    PostgreSQL URL (postgres://user@host[:port]/database[?sslmode=disable|allow|prefer|require|\
                    verify-ca|verify-full&sslrootcert=FILE|system]) instead of SQLite; the password comes from \
                    --database-password-file or $PGPASSWORD. Without sslmode: verify-full (the system's roots \
                    without sslrootcert), or prefer when the host is loopback (127.0.0.1, ::1, localhost); toward \
                    any other host the modes that don't verify the server are refused (see \
                    --allow-unverified-database-tls); verify-ca needs sslrootcert=FILE.
                    """
            )
            var database: String?

            @Option(help: "The issuer named in tokens (default: http://HOST:PORT).")
            var issuer: String?

            @Flag(help: "Accept SimulatedEnclave evidence from this machine's simulated platform.")
            var allowSimulated = false

            @Option(
                help:
                    "A certificate (PEM) whose key may sign policies; may repeat. With any, unsigned policies are refused."
            )
            var policySigner: [String] = []

            @Option(
                help: """
                    The token signing key: rsa (RS256, which Microsoft's Azure Attestation clients verify) or ec \
                    (ES256). Made on first start and kept in the store; a key of the other kind made earlier stays \
                    published in /certs so that its tokens still verify.
                    """
            )
            var tokenKeyType = "rsa"

            @Flag(
                help: """
                    Refuse signed policy and certificate requests in MAA's form (as Microsoft's clients send them, \
                    accepted once each otherwise): every signed request must then name this service, its type, its \
                    operation and a new version (enclave policy makes them so).
                    """
            )
            var requireVersionedPolicyRequests = false

            @OptionGroup(title: "Collateral for real SGX and TDX quotes")
            var collateral: ServeCollateralOptions

            @Option(help: "The largest request body, in bytes.")
            var maxBodySize = AttestationServer.defaultMaxBodySize

            @OptionGroup(title: "Policy management and accepted evidence")
            var trust: ServeTrustOptions

            @Option(
                help: "The TLS certificate chain (PEM, leaf first). Default: a self-signed one in the data directory."
            )
            var tlsCert: String?

            @Option(help: "The TLS certificate's private key (PEM).")
            var tlsKey: String?

            @Flag(help: "Serve plain HTTP instead of HTTPS (only on a loopback address).")
            var insecureHttp = false

            @Option(
                help: "A file holding the PostgreSQL password (else $PGPASSWORD); a password in --database is refused."
            )
            var databasePasswordFile: String?

            @Flag(help: Self.allowUnverifiedDatabaseTLSHelp)
            var allowUnverifiedDatabaseTls = false

            /// The help of `--allow-unverified-database-tls`, shared by every command with `--database`.
            static let allowUnverifiedDatabaseTLSHelp: ArgumentHelp = """
                DANGEROUS: accept sslmode=disable, allow, prefer or require toward a database host that is not \
                loopback. The server is then not verified: anyone on the path can pose as the database (which this \
                service trusts with its keys and records) and, below require, read the password.
                """

            @Option(help: "Seconds a connection may take to send a complete request head (TLS handshake included).")
            var headerTimeout = 10

            @Option(help: "Seconds a request body may take to arrive.")
            var bodyTimeout = 30

            @Option(help: "Seconds an idle keep-alive connection stays open.")
            var idleTimeout = 60

            @Option(help: "The most connections served at once (default: half the descriptor limit, at most 1024).")
            var maxConnections: Int?

            @Option(
                help: """
                    The most draft policies (draftPolicyForAttestation, which anyone may send) evaluated at once; \
                    one more is refused at once with 429 TooManyDraftPolicyEvaluations. 0 refuses every draft. \
                    0 to 64.
                    """
            )
            var maxConcurrentDraftEvaluations = Self.defaults.maxConcurrentDraftEvaluations

            @Option(help: "The longest draft policy accepted, in bytes (DraftPolicyTooLarge beyond). 1 to 262144.")
            var maxDraftPolicyLength = Self.defaults.maxDraftPolicyLength

            @Option(
                help: """
                    Seconds one policy evaluation (stored or draft) may run before it is stopped and refused with \
                    PolicyEvaluationLimitExceeded, whatever its step count. 0.001 to 600.
                    """
            )
            var policyEvaluationTimeout = Self.defaults.policyEvaluationTimeout

            /// The library's defaults, which the options above start from.
            static let defaults = AttestationServiceCore.Configuration(issuer: "")

            /// The draft policy limits' ranges: a stored policy is at most 256 KiB, so no draft needs more.
            static let draftEvaluationsRange = 0...64
            static let draftPolicyLengthRange = 1...(256 << 10)
            static let evaluationTimeoutRange: ClosedRange<Double> = 0.001...600

            func validate() throws {
                if insecureHttp {
                    guard AttestationServer.isLoopback(host) else {
                        throw ValidationError(
                            "--insecure-http serves plain HTTP, which is allowed only on loopback, not on \(host)"
                        )
                    }
                    guard tlsCert == nil, tlsKey == nil else {
                        throw ValidationError("--insecure-http and --tls-cert/--tls-key exclude each other")
                    }
                }
                if let database, URLComponents(string: database)?.password != nil {
                    throw ValidationError(
                        "a password in --database is visible to every user of this machine; "
                            + "use --database-password-file or $PGPASSWORD"
                    )
                }
                guard (tlsCert == nil) == (tlsKey == nil) else {
                    throw ValidationError("--tls-cert and --tls-key go together")
                }
                for (name, value) in [("header", headerTimeout), ("body", bodyTimeout), ("idle", idleTimeout)] {
                    guard (1...3600).contains(value) else {
                        throw ValidationError("--\(name)-timeout is 1 to 3600 seconds")
                    }
                }
                guard Self.draftEvaluationsRange.contains(maxConcurrentDraftEvaluations) else {
                    throw ValidationError("--max-concurrent-draft-evaluations is 0 to 64")
                }
                guard Self.draftPolicyLengthRange.contains(maxDraftPolicyLength) else {
                    throw ValidationError("--max-draft-policy-length is 1 to 262144 bytes")
                }
                guard Self.evaluationTimeoutRange.contains(policyEvaluationTimeout) else {  // NaN is in no range
                    throw ValidationError("--policy-evaluation-timeout is 0.001 to 600 seconds")
                }
            }

            /// The TLS identity to serve with (nil: plain HTTP, only when asked for and on loopback).
            func tlsIdentity(dataDirectory: String, logger: Logger) throws -> TLSIdentity? {
                try ServedTLS.identity(
                    service: "",
                    insecureHttp: insecureHttp,
                    certificate: tlsCert,
                    key: tlsKey,
                    dataDirectory: dataDirectory,
                    host: host,
                    logger: logger
                )
            }

            func run() async throws {
                let logger = Logger(label: "enclavekit.attestation")
                let prepared = try await prepare(logger: logger)
                do {
                    try await Self.serve(prepared.app, host: host, port: port)
                } catch {
                    try? await prepared.store.close()
                    throw error
                }
                try await prepared.store.close()
            }

            /// Runs `app` until SIGINT or SIGTERM; a port in use (or not available) is one line, exit status 70.
            static func serve(_ app: any ApplicationProtocol, host: String, port: Int) async throws {
                do {
                    try await app.runService()
                } catch let error as IOError where error.errnoCode == EADDRINUSE {
                    // One line, not NIO's `bind(descriptor:ptr:bytes:)` text: the likeliest mistake on a start.
                    throw RuntimeFailure(
                        message: "cannot listen on \(host):\(port): the port is in use by another process "
                            + "(choose another --port, or --port 0 for any free port)"
                    )
                } catch let error as IOError where [EADDRNOTAVAIL, EACCES].contains(error.errnoCode) {
                    throw RuntimeFailure(
                        message: "cannot listen on \(host):\(port): \(String(cString: strerror(error.errnoCode)))"
                    )
                }
            }

            /// The service ready to run: its application, core and store (the caller closes the store).
            func prepare(
                logger: Logger
            ) async throws -> (
                app: any ApplicationProtocol, core: AttestationServiceCore, store: any ServiceStore
            ) {
                let dataDirectory = dataDir ?? Self.defaultDataDirectory()
                let tls = try tlsIdentity(dataDirectory: dataDirectory, logger: logger)
                let store: any ServiceStore
                if let database {
                    #if Postgres
                    store = try await Self.openPostgres(
                        database,
                        passwordFile: databasePasswordFile,
                        allowUnverifiedTLS: allowUnverifiedDatabaseTls
                    ) {
                        try await PostgresServiceStore.connect(url: $0, password: $1, allowUnverifiedTLS: $2)
                    }
                    #else
                    throw Self.withoutPostgres(database)
                    #endif
                } else {
                    do {
                        store = try await SQLiteServiceStore.open(directory: dataDirectory)
                    } catch let error as EnclaveError {
                        throw ValidationError(error.reason)
                    }
                }
                // Whatever fails from here on, the store is closed first (an open SQLite connection asserts when
                // it is dropped unclosed in debug builds).
                do {
                    let scheme = tls == nil ? "http" : "https"
                    var configuration = AttestationServiceCore.Configuration(
                        issuer: issuer ?? "\(scheme)://\(host):\(port)"
                    )
                    configuration.allowSimulated = allowSimulated
                    guard let keyType = TokenSigner.KeyType(rawValue: tokenKeyType) else {
                        throw ValidationError("--token-key-type is rsa or ec")
                    }
                    configuration.tokenKeyType = keyType
                    configuration.requireVersionedPolicyRequests = requireVersionedPolicyRequests
                    configuration.maxConcurrentDraftEvaluations = maxConcurrentDraftEvaluations
                    configuration.maxDraftPolicyLength = maxDraftPolicyLength
                    configuration.policyEvaluationTimeout = policyEvaluationTimeout
                    if allowSimulated {
                        let platform = try SimulatedPlatform.open()
                        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
                        // Issued once per TCB state and parsed once per bundle, so the verification cache holds
                        // across requests (`enclave bench service` measures this same provider).
                        configuration.simulatedCollateral = AttestationServiceCore.Configuration.simulatedCollateral {
                            time in try platform.collateralJSON(at: time)
                        }
                    }
                    for path in policySigner {
                        guard
                            let certificate = try? Certificate(pemEncoded: Files.readText(path, what: "policy signer"))
                        else {
                            throw ValidationError("\(path) is not a PEM certificate")
                        }
                        configuration.policySigners.append(certificate)
                    }
                    try collateral.apply(to: &configuration, store: store, logger: logger)
                    try await trust.apply(
                        to: &configuration,
                        store: store,
                        dataDirectory: dataDirectory,
                        logger: logger
                    )
                    let core = try await AttestationServiceCore(
                        configuration: configuration,
                        store: store,
                        logger: logger
                    )
                    let limits = AttestationServer.ConnectionLimits(
                        headerTimeout: .seconds(Int64(headerTimeout)),
                        bodyTimeout: .seconds(Int64(bodyTimeout)),
                        idleTimeout: .seconds(Int64(idleTimeout)),
                        maxConnections: maxConnections
                    )
                    let app: any ApplicationProtocol = try AttestationServer.application(
                        core: core,
                        host: host,
                        port: port,
                        maxBodySize: maxBodySize,
                        tls: tls,
                        limits: limits,
                        logger: logger,
                        metrics: PrometheusMetrics.exposition
                    ) { [issuer, port = self.port] bound in
                        // On port 0 the default issuer names the port actually bound, not `:0`.
                        if issuer == nil && port == 0 { core.useIssuer("\(scheme)://\(host):\(bound)") }
                        logger.notice(
                            "attestation service listening",
                            metadata: ["port": "\(bound)", "scheme": "\(scheme)", "issuer": "\(core.issuer)"]
                        )
                    }
                    return (app, core, store)
                } catch {
                    try? await store.close()
                    throw error
                }
            }

            /// The PostgreSQL password: from `file` (first line), else `$PGPASSWORD`, else none.
            /// Opens what `--database` names with `open(url, password, allowUnverifiedTLS)`, the password from
            /// `--database-password-file` or `PGPASSWORD`: a URL the store refuses (`InvalidDatabaseURL`, or
            /// `InsecureDatabaseConnection`: a mode that doesn't verify a server off loopback) is a usage error, any
            /// other ``ServiceError`` a runtime failure with its message. With `allowUnverifiedTLS`
            /// (`--allow-unverified-database-tls`) it says on standard error what that accepts.
            static func openPostgres<Store>(
                _ url: String,
                passwordFile: String?,
                allowUnverifiedTLS: Bool,
                _ open: (_ url: String, _ password: String?, _ allowUnverifiedTLS: Bool) async throws -> Store
            ) async throws -> Store {
                let password = try databasePassword(file: passwordFile)
                if allowUnverifiedTLS {
                    FileHandle.standardError.write(
                        Data(
                            ("Warning: --allow-unverified-database-tls: a database connection that does not verify "
                                + "the server is accepted toward any host\n").utf8
                        )
                    )
                }
                do {
                    return try await open(url, password, allowUnverifiedTLS)
                } catch let error as ServiceError {
                    if ["InvalidDatabaseURL", "InsecureDatabaseConnection"].contains(error.code) {
                        throw ValidationError(error.message)
                    }
                    throw RuntimeFailure(message: error.message)
                }
            }

            /// The usage error for `--database` in a build without the Postgres trait. `url` is taken, not printed (it
            /// may carry a password), so that the caller's binding is used in either build.
            static func withoutPostgres(_ url: String) -> ValidationError {
                _ = url
                return ValidationError(
                    "this enclave was built without PostgreSQL support (the Postgres trait); "
                        + "rebuild with `swift build --product enclave` (default traits)"
                )
            }

            static func databasePassword(file: String?) throws -> String? {
                if let file {
                    // Like libpq's .pgpass: a password file others can read is not a secret.
                    let mode = (try? FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) ?? 0
                    guard mode & 0o077 == 0 else {
                        throw ValidationError(
                            "the database password file \(file) has mode 0\(String(mode, radix: 8)): others may read "
                                + "it; chmod 600 \(file)"
                        )
                    }
                    let text = try Files.readText(file, what: "database password file")
                    guard let line = text.split(separator: "\n", omittingEmptySubsequences: false).first,
                        !line.isEmpty
                    else {
                        throw ValidationError("the database password file \(file) is empty")
                    }
                    return String(line.hasSuffix("\r") ? line.dropLast() : line)
                }
                if let password = ProcessInfo.processInfo.environment["PGPASSWORD"], !password.isEmpty {
                    return password
                }
                return nil
            }

            static func defaultDataDirectory() -> String {
                let base =
                    ProcessInfo.processInfo.environment["XDG_DATA_HOME"]
                    ?? (NSHomeDirectory() + "/.local/share")
                return base + "/enclavekit/attestation"
            }
        }
    }
}
