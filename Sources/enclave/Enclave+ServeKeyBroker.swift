import ArgumentParser
import Attestation
import AttestationAPI
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import KeyBrokerInterface
import KeyBrokerService
import Logging
import NIOCore
import X509

#if Postgres
import KeyBrokerServicePostgres
#endif

extension EnclaveCommand.Serve {
    struct KeyBroker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keybroker",
            abstract: "Run the key broker (Key Vault-style secure key release; keys live in the broker enclave).",
            discussion: """
                Starts with no set-up: SQLite in the data directory, the broker enclave's keyring sealed there on \
                first start (signer policy: an upgraded broker keeps access, a downgraded one can't read it), an \
                administrator token in DATA-DIR/admin-token, a self-signed TLS certificate. With no --authority it \
                trusts the local attestation service (https://127.0.0.1:8080, its TLS certificate from its data \
                directory) and pins its token signing certificates at start. Stops on SIGINT or SIGTERM.

                Replicas: instances started with the same --database serve the same keys. The first makes the \
                keyring; every other gets it only by an attested join: --join URL of a running instance (its TLS \
                certificate with --join-cert or --join-pin, its administrator token with --join-admin-token-file). \
                The newcomer's broker enclave attests (through the first --authority), the running instance's enclave \
                checks the token (same signer and product, a security version at least its own) and wraps the \
                keyring to the newcomer's enclave, which seals it in DATA-DIR/keyring.sealed. An instance that finds a \
                keyring in the database that it can't unseal refuses to start without --join; it never makes a \
                second keyring over the same database.

                Clean rooms' rollback counters (GET /counters/CONTRACT, POST /counters/CONTRACT/increment) are kept \
                in DATA-DIR/counters.sqlite and served only without --database: replicas share one signing key, so \
                per-instance counters would let a clean room's host read an older value from another replica. A \
                clean room bound to a broker that serves no counters does not open.
                """
        )

        @Option(help: "Address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on (0: any free port).")
        var port = 8443

        @Option(help: "Data directory (default: $XDG_DATA_HOME/enclavekit/keybroker).")
        var dataDir: String?

        @Option(
            help: """
                PostgreSQL URL (postgres://user@host[:port]/database[?sslmode=disable|allow|prefer|require|\
                verify-ca|verify-full&sslrootcert=FILE|system]) instead of SQLite, for replicas sharing one \
                database; the password comes from --database-password-file or $PGPASSWORD. Without sslmode: \
                verify-full, or prefer when the host is loopback; toward any other host the modes that don't \
                verify the server are refused (see --allow-unverified-database-tls); verify-ca needs \
                sslrootcert=FILE.
                """
        )
        var database: String?

        @Option(help: "A file holding the PostgreSQL password (else $PGPASSWORD); a password in --database is refused.")
        var databasePasswordFile: String?

        @Flag(help: EnclaveCommand.Serve.Attestation.allowUnverifiedDatabaseTLSHelp)
        var allowUnverifiedDatabaseTls = false

        @Option(
            help: """
                Join the running broker instance at this URL (sharing --database): its enclave wraps the keyring to \
                this instance's attested enclave. Needed once, when the database has a keyring and DATA-DIR has none.
                """
        )
        var join: String?

        @Option(help: "The running instance's TLS certificate (or its CA), PEM, for --join.")
        var joinCert: String?

        @Option(help: "The SHA-256 fingerprint of the running instance's TLS certificate (it prints it), for --join.")
        var joinPin: String?

        @Option(help: "A file holding the running instance's administrator token, for --join.")
        var joinAdminTokenFile: String?

        @Option(
            help: """
                A trusted attestation authority: URL (its token signing certificates fetched from URL/certs at start) \
                or URL=CERT.pem (pinned from the file); may repeat. Default: the local attestation service.
                """
        )
        var authority: [String] = []

        @Option(
            help: "The local attestation service's data directory (its TLS certificate, for the default authority)."
        )
        var attestationDataDir: String?

        @Option(
            help: "The broker enclave image (default: KeyBrokerEnclave beside this executable; signature IMAGE.sig)."
        )
        var brokerEnclave: String?

        @Flag(help: "Allow a debug-signed broker enclave (development only).")
        var debugEnclave = false

        @Option(help: "The administrator token file (default: DATA-DIR/admin-token, created 0600 on first start).")
        var adminTokenFile: String?

        @Option(help: "The TLS certificate chain (PEM, leaf first). Default: a self-signed one in the data directory.")
        var tlsCert: String?

        @Option(help: "The TLS certificate's private key (PEM).")
        var tlsKey: String?

        @Flag(help: "Serve plain HTTP instead of HTTPS (only on a loopback address).")
        var insecureHttp = false

        @Option(help: "Days anonymous release refusals stay counted (1 to 36500; they are not in the audit log).")
        var refusalRetentionDays = 90

        @Option(help: "The most rows of anonymous release refusal counts kept (the newest; at least 1).")
        var maxRefusalRecords = 1_000_000

        func validate() throws {
            guard (1...36500).contains(refusalRetentionDays) else {
                throw ValidationError("--refusal-retention-days is 1 to 36500")
            }
            guard maxRefusalRecords >= 1 else { throw ValidationError("--max-refusal-records is at least 1") }
            if insecureHttp, !AttestationServer.isLoopback(host) {
                throw ValidationError("--insecure-http serves plain HTTP, which is allowed only on loopback")
            }
            guard (tlsCert == nil) == (tlsKey == nil) else {
                throw ValidationError("--tls-cert and --tls-key go together")
            }
            for value in authority { _ = try AuthoritySpec(value) }
            if let database, URLComponents(string: database)?.password != nil {
                throw ValidationError(
                    "a password in --database is visible to every user of this machine; "
                        + "use --database-password-file or $PGPASSWORD"
                )
            }
            if databasePasswordFile != nil, database == nil {
                throw ValidationError("--database-password-file goes with --database")
            }
            if join == nil {
                guard joinCert == nil, joinPin == nil, joinAdminTokenFile == nil else {
                    throw ValidationError("--join-cert, --join-pin and --join-admin-token-file go with --join")
                }
            } else if let join {
                guard database != nil else {
                    throw ValidationError(
                        "--join shares a running instance's keyring over one PostgreSQL database: give --database"
                    )
                }
                guard join.hasPrefix("https://") || join.hasPrefix("http://"), let joinHost = URL(string: join)?.host
                else {
                    throw ValidationError("--join is the running instance's https:// URL: \(join)")
                }
                // The administrator token travels with the join: in the clear only to this machine.
                guard join.hasPrefix("https://") || AttestationServer.isLoopback(joinHost) else {
                    throw ValidationError("--join over plain http:// is allowed only to a loopback address: \(join)")
                }
                guard !(joinCert != nil && joinPin != nil) else {
                    throw ValidationError("--join-cert and --join-pin are two ways to trust one instance: give one")
                }
                guard joinAdminTokenFile != nil else {
                    throw ValidationError(
                        "--join needs the running instance's administrator token: --join-admin-token-file FILE"
                    )
                }
            }
        }

        func run() async throws {
            let logger = Logger(label: "enclavekit.keybroker")
            let dataDirectory = dataDir ?? Self.defaultDataDirectory()
            let authorities = try await resolveAuthorities(logger: logger)
            let joining = try joinSpec()
            let tls = try tlsIdentity(dataDirectory: dataDirectory, logger: logger)
            // Last, so that nothing between opening and handing over can leave the connection open.
            let store = try await openDatabase()
            let launched = try await KeyBrokerLaunch.start(
                dataDirectory: dataDirectory,
                host: host,
                port: port,
                authorities: authorities,
                enclavePath: brokerEnclave,
                debugEnclave: debugEnclave,
                adminTokenFile: adminTokenFile,
                tls: tls,
                logger: logger,
                store: store,
                join: joining,
                refusalRetentionDays: refusalRetentionDays,
                maxRefusalRecords: maxRefusalRecords
            )
            do {
                try await launched.app.runService()
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                await launched.close()
                throw RuntimeFailure(
                    message: "cannot listen on \(host):\(port): the port is in use by another process "
                        + "(choose another --port, or --port 0 for any free port)"
                )
            } catch {
                await launched.close()
                throw error
            }
            await launched.close()
        }

        /// The PostgreSQL store for `--database`, nil without it (SQLite in the data directory).
        func openDatabase() async throws -> (any KeyBrokerStore)? {
            guard let database else { return nil }
            #if Postgres
            return try await EnclaveCommand.Serve.Attestation.openPostgres(
                database,
                passwordFile: databasePasswordFile,
                allowUnverifiedTLS: allowUnverifiedDatabaseTls
            ) {
                try await PostgresKeyBrokerStore.connect(url: $0, password: $1, allowUnverifiedTLS: $2)
            }
            #else
            throw EnclaveCommand.Serve.Attestation.withoutPostgres(database)
            #endif
        }

        /// How to join the running instance `--join` names: the attestation service the newcomer's evidence goes to
        /// (the first authority), the running instance's client (its TLS trust and administrator token).
        func joinSpec() throws -> KeyBrokerJoin? {
            guard let join, let url = URL(string: join), let tokenFile = joinAdminTokenFile else { return nil }
            let trust: ServiceTrust
            do {
                if let joinCert {
                    trust = try ServiceTrust.certificateFile(joinCert)
                } else if let joinPin {
                    trust = try ServiceTrust.pinned(sha256: joinPin)
                } else {
                    trust = .system
                }
            } catch let error as AttestationClient.Failure {
                throw ValidationError(error.message)
            }
            let token = try Files.readText(tokenFile, what: "the running instance's administrator token")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ValidationError("\(tokenFile) is empty") }
            let spec = try authority.first.map { try AuthoritySpec($0) } ?? AuthoritySpec("https://127.0.0.1:8080")
            guard let authorityURL = URL(string: spec.url) else { throw ValidationError("\(spec.url) is not a URL") }
            return KeyBrokerJoin(
                attestation: AttestationClient(endpoint: authorityURL, trust: try authorityTrust()),
                running: KeyBrokerClient(endpoint: url, trust: trust, adminToken: token),
                url: join
            )
        }

        /// How the CLI trusts an authority's HTTPS: the local attestation service's certificate for the default,
        /// else the system's roots.
        func authorityTrust() throws -> ServiceTrust {
            guard authority.isEmpty else { return .system }
            let tls = (attestationDataDir ?? Self.attestationDataDirectory()) + "/tls/certificate.pem"
            return try ServiceTrust.certificateFile(tls)
        }

        func tlsIdentity(dataDirectory: String, logger: Logger) throws -> TLSIdentity? {
            try ServedTLS.identity(
                service: "Key broker ",
                insecureHttp: insecureHttp,
                certificate: tlsCert,
                key: tlsKey,
                dataDirectory: dataDirectory,
                host: host,
                logger: logger
            )
        }

        /// The authorities given (or the local attestation service), with their signing certificates.
        func resolveAuthorities(logger: Logger) async throws -> [BrokerAuthority] {
            let specs =
                authority.isEmpty
                ? [try AuthoritySpec("https://127.0.0.1:8080")] : try authority.map { try AuthoritySpec($0) }
            var resolved: [BrokerAuthority] = []
            for spec in specs {
                if let file = spec.certificateFile {
                    resolved.append(BrokerAuthority(url: spec.url, certificates: try Self.certificates(pemFile: file)))
                    continue
                }
                let trust = try authorityTrust()
                guard let url = URL(string: spec.url) else { throw ValidationError("\(spec.url) is not a URL") }
                let jwks: String
                do {
                    jwks = try await AttestationClient(endpoint: url, trust: trust).certificates()
                } catch {
                    throw RuntimeFailure(
                        message: "cannot fetch the signing certificates of the authority \(spec.url): \(error) "
                            + "(start it first, or pin them: --authority \(spec.url)=CERT.pem)"
                    )
                }
                let certificates = try Self.certificates(jwks: jwks)
                logger.notice(
                    "trusting attestation authority",
                    metadata: ["url": "\(spec.url)", "certificates": "\(certificates.count)"]
                )
                resolved.append(BrokerAuthority(url: spec.url, certificates: certificates))
            }
            return resolved
        }

        static func certificates(pemFile: String) throws -> [[UInt8]] {
            let text = try Files.readText(pemFile, what: "authority certificate")
            var certificates: [[UInt8]] = []
            for block in text.components(separatedBy: "-----BEGIN CERTIFICATE-----").dropFirst() {
                guard let end = block.range(of: "-----END CERTIFICATE-----"),
                    let der = Data(base64Encoded: String(block[..<end.lowerBound]), options: .ignoreUnknownCharacters),
                    (try? Certificate(derEncoded: Array(der))) != nil
                else {
                    throw ValidationError("\(pemFile) holds a PEM certificate that does not parse")
                }
                certificates.append(Array(der))
            }
            guard !certificates.isEmpty else { throw ValidationError("\(pemFile) holds no PEM certificate") }
            return certificates
        }

        /// The first certificate (`x5c[0]`) of each key in a JWKS.
        static func certificates(jwks: String) throws -> [[UInt8]] {
            guard let set = try? WireJSON.decode(JSONWebKeySet.self, from: Array(jwks.utf8)) else {
                throw RuntimeFailure(message: "the authority's /certs is not a JWKS")
            }
            let certificates = set.keys.compactMap { $0.x5c?.first }.compactMap { Data(base64Encoded: $0) }.map {
                Array($0)
            }
            guard !certificates.isEmpty else {
                throw RuntimeFailure(message: "the authority's /certs names no certificate (x5c)")
            }
            return certificates
        }

        static func defaultDataDirectory() -> String {
            let base = ProcessInfo.processInfo.environment["XDG_DATA_HOME"] ?? (NSHomeDirectory() + "/.local/share")
            return base + "/enclavekit/keybroker"
        }

        static func attestationDataDirectory() -> String {
            EnclaveCommand.Serve.Attestation.defaultDataDirectory()
        }
    }
}

/// `URL` or `URL=CERT.pem`.
struct AuthoritySpec {
    var url: String
    var certificateFile: String?

    init(_ text: String) throws {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard let first = parts.first, first.hasPrefix("https://") || first.hasPrefix("http://") else {
            throw ValidationError("--authority is URL or URL=CERT.pem, with an https:// (or http://) URL: \(text)")
        }
        url = first.hasSuffix("/") ? String(first.dropLast()) : first
        certificateFile = parts.count == 2 ? parts[1] : nil
    }
}

/// `--join`: where the newcomer's evidence is attested, and the running instance that wraps the keyring to it.
struct KeyBrokerJoin {
    /// The attestation service (the first authority) that turns the newcomer enclave's evidence into a token.
    let attestation: AttestationClient
    /// The running instance (`POST /replicas/join`, with its administrator token).
    let running: KeyBrokerClient
    /// Its URL, for messages.
    let url: String

    /// Has `enclave` (which has no keyring yet) offer a key bound into its evidence, gets the evidence attested,
    /// asks the running instance for the keyring wrapped to that key, has the running instance's enclave evidence
    /// (in the answer) attested the same way, and seals what its enclave unwrapped at `sealedKeyringPath` once it
    /// checked that token against `authorities`. The host only carries the evidence, the tokens and the wrapped keyring.
    func perform(enclave: Enclave, sealedKeyringPath: String, authorities: [BrokerAuthority]) async throws {
        let attestation = self.attestation
        let running = self.running
        let url = self.url
        try await EnclaveBrokerEngine.join(
            enclave: enclave,
            sealedKeyringPath: sealedKeyringPath,
            authorities: authorities,
            attest: { evidence, runtimeData in
                do {
                    return try await attestation.attest(
                        try Evidence(evidence),
                        runtimeData: .init(data: runtimeData, dataType: .json)
                    )
                } catch let failure as AttestationClient.Failure {
                    throw RuntimeFailure(
                        message: "--join: the attestation service refused a broker enclave's evidence (this one's "
                            + "or the running instance's): \(failure.code): \(failure.message)"
                    )
                }
            },
            grant: { request in
                do {
                    return try await running.join(request)
                } catch let failure as AttestationClient.Failure {
                    let what =
                        failure.status == 0
                        ? "cannot reach the running instance at \(url)"
                        : "the running instance at \(url) refused the join (HTTP \(failure.status))"
                    throw RuntimeFailure(message: "--join: \(what): \(failure.code): \(failure.message)")
                }
            }
        )
    }
}

/// A key broker ready to serve: store, broker enclave, core and application (shared by `serve keybroker` and
/// `serve`).
struct KeyBrokerLaunch {
    let app: any ApplicationProtocol
    let core: KeyBrokerCore
    let store: any KeyBrokerStore
    let enclave: Enclave
    /// Clean rooms' rollback counters (`DATA-DIR/counters.sqlite`); nil on a shared PostgreSQL database, where the
    /// counter routes are not served (see ``openCounters(dataDirectory:shared:logger:)``).
    var counters: SQLiteCounterStore? = nil

    func close() async {
        try? await store.close()
        try? await counters?.close()
        await enclave.terminate()
    }

    /// The rollback counter store: `DATA-DIR/counters.sqlite` for an instance on its own SQLite database; none for
    /// replicas on a shared PostgreSQL database. Replicas share one keyring, so every replica signs counter answers
    /// with the same key: counters kept per instance would let a clean room's host read an older value from another
    /// replica and roll the privacy budget back. Without the routes a clean room bound to this broker refuses to
    /// open (fail closed) instead.
    static func openCounters(dataDirectory: String, shared: Bool, logger: Logger) async throws -> SQLiteCounterStore? {
        guard !shared else {
            logger.notice(
                "clean room rollback counters not served on a shared --database",
                metadata: ["why": "replicas would each keep their own; use a broker on its own data directory"]
            )
            return nil
        }
        do {
            return try await SQLiteCounterStore.open(directory: dataDirectory)
        } catch let error as EnclaveError {
            throw ValidationError(error.reason)
        }
    }

    static func enclavePath(_ given: String?) -> String {
        if let given { return given }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("KeyBrokerEnclave").path
    }

    /// Signs the broker enclave image at `path` with the key in `dataDirectory/broker-signing-key.pem` (made 0600
    /// on first use), product 1, security version 1; answers the signature's path (in the data directory).
    static func signDefault(_ path: String, dataDirectory: String, logger: Logger) throws -> String {
        let keyPath = dataDirectory + "/broker-signing-key.pem"
        let key: P256.Signing.PrivateKey
        if let pem = FileManager.default.contents(atPath: keyPath) {
            key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: pem, as: UTF8.self))
        } else {
            key = P256.Signing.PrivateKey()
            try SecretFile.write(Array(key.pemRepresentation.utf8), to: keyPath, mode: 0o600, replacing: false)
            logger.notice("broker enclave signing key created", metadata: ["path": "\(keyPath)"])
        }
        let config = EnclaveConfig(productID: 1, securityVersion: 1)
        let image = try EnclaveImage(path: path)
        let signature = try EnclaveSignature(
            signing: EnclaveSignature.Body(manifest: image.manifest(config: config), config: config),
            with: key
        )
        let signaturePath = dataDirectory + "/KeyBrokerEnclave.sig"
        try SecretFile.write(signature.bytes, to: signaturePath, mode: 0o644, replacing: true)
        return signaturePath
    }

    static func start(
        dataDirectory: String,
        host: String,
        port: Int,
        authorities: [BrokerAuthority],
        enclavePath given: String?,
        debugEnclave: Bool,
        adminTokenFile: String?,
        tls: TLSIdentity?,
        logger: Logger,
        store existing: (any KeyBrokerStore)? = nil,
        join: KeyBrokerJoin? = nil,
        refusalRetentionDays: Int = 90,
        maxRefusalRecords: Int = 1_000_000
    ) async throws -> KeyBrokerLaunch {
        let store: any KeyBrokerStore
        do {
            if let existing {
                // The data directory still holds the sealed keyring, the signing key and the admin token.
                try SecretFile.prepareDirectory(dataDirectory, what: "data directory")
                store = existing
            } else {
                store = try await SQLiteKeyBrokerStore.open(directory: dataDirectory)
            }
        } catch let error as EnclaveError {
            try? await existing?.close()
            throw ValidationError(error.reason)
        }
        do {
            return try await start(
                dataDirectory: dataDirectory,
                host: host,
                port: port,
                authorities: authorities,
                enclavePath: given,
                debugEnclave: debugEnclave,
                adminTokenFile: adminTokenFile,
                tls: tls,
                logger: logger,
                opened: store,
                shared: existing != nil,
                join: join,
                refusalRetentionDays: refusalRetentionDays,
                maxRefusalRecords: maxRefusalRecords
            )
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// ``start(dataDirectory:host:port:authorities:enclavePath:debugEnclave:adminTokenFile:tls:logger:store:join:refusalRetentionDays:maxRefusalRecords:)``
    /// on an open store (which the caller closes when this throws); `shared`: a database other instances may use.
    private static func start(
        dataDirectory: String,
        host: String,
        port: Int,
        authorities: [BrokerAuthority],
        enclavePath given: String?,
        debugEnclave: Bool,
        adminTokenFile: String?,
        tls: TLSIdentity?,
        logger: Logger,
        opened store: any KeyBrokerStore,
        shared: Bool,
        join: KeyBrokerJoin?,
        refusalRetentionDays: Int,
        maxRefusalRecords: Int
    ) async throws -> KeyBrokerLaunch {
        let path = enclavePath(given)
        let admin: AdminCredential
        do {
            let tokenPath = adminTokenFile ?? dataDirectory + "/admin-token"
            let (token, created) = try AdminCredential.loadOrCreate(path: tokenPath)
            if created { logger.notice("administrator token created", metadata: ["path": "\(tokenPath)"]) }
            admin = AdminCredential(token: token)
        } catch let error as EnclaveError {
            throw ValidationError(error.reason)
        } catch let error as ServiceError {
            throw ValidationError(error.message)
        }
        var options = Enclave.Options()
        options.debug = debugEnclave
        if given == nil, !FileManager.default.fileExists(atPath: path + ".sig") {
            // The development default: the shipped image signed on first start with a key kept in the data directory
            // (replicas joining this one must be signed with the same key: copy it, or sign the image yourself).
            do {
                options.signaturePath = try signDefault(path, dataDirectory: dataDirectory, logger: logger)
            } catch {
                throw RuntimeFailure(message: "cannot sign the broker enclave \(path): \(Files.describe(error))")
            }
        }
        let enclave: Enclave
        do {
            enclave = try await Enclave.load(path: path, options: options)
        } catch let error as EnclaveError {
            throw RuntimeFailure(message: "cannot load the broker enclave \(path): \(error.reason)")
        }
        do {
            let scheme = tls == nil ? "http" : "https"
            let sealedPath = dataDirectory + "/keyring.sealed"
            let recorded = try await store.keyringID()
            let hasKeyring = FileManager.default.fileExists(atPath: sealedPath)
            if !hasKeyring, let recorded {
                // The database already belongs to a keyring: never make a second one over it.
                guard let join else {
                    if !shared { throw KeyringDecision.keyringLost(recorded: recorded, sealedPath: sealedPath) }
                    throw KeyringDecision.joinNeeded(recorded: recorded, sealedPath: sealedPath)
                }
                try await join.perform(enclave: enclave, sealedKeyringPath: sealedPath, authorities: authorities)
                logger.notice("joined the running instance: keyring sealed", metadata: ["from": "\(join.url)"])
            } else if let join {
                if hasKeyring {
                    logger.notice(
                        "already holds a sealed keyring: --join not needed",
                        metadata: ["from": "\(join.url)"]
                    )
                } else {
                    throw RuntimeFailure(
                        message: "--join: the database holds no keyring yet, so there is nothing to join (is "
                            + "\(join.url) on another database?); start the first instance without --join"
                    )
                }
            }
            let engine = try await EnclaveBrokerEngine.open(
                enclave: enclave,
                sealedKeyringPath: sealedPath,
                authorities: authorities,
                brokerName: "\(scheme)://\(host):\(port)",
                requireExisting: recorded != nil
            )
            let core: KeyBrokerCore
            do {
                core = try await KeyBrokerCore(
                    store: store,
                    engine: engine,
                    configuration: .init(
                        adminCredential: admin,
                        refusalRetention: Double(refusalRetentionDays) * 86400,
                        maxRefusalRecords: maxRefusalRecords
                    ),
                    baseURL: "\(scheme)://\(host):\(port)"
                )
            } catch let error as ServiceError where error.code == "KeyringMismatch" && !hasKeyring && recorded == nil {
                // Two first instances started at once and the other recorded its keyring first: drop the one made
                // here (it guards nothing yet), so that a restart with --join can seal the recorded one.
                try? FileManager.default.removeItem(atPath: sealedPath)
                throw RuntimeFailure(
                    message: "another instance recorded its keyring in the database first: restart this one with "
                        + "--join URL-OF-THAT-INSTANCE --join-admin-token-file FILE"
                )
            } catch let error as ServiceError where error.code == "KeyringMismatch" && hasKeyring {
                // The data directory's keyring is not the database's: this data directory belongs to another
                // database (--join can't help: it never replaces a sealed keyring).
                throw RuntimeFailure(
                    message: "\(sealedPath) holds another keyring than the database's (\(recorded ?? "none")): this "
                        + "data directory belongs to another database; give this instance a data directory of its own "
                        + "(and --join a running instance on this database)"
                )
            }
            let counters = try await openCounters(dataDirectory: dataDirectory, shared: shared, logger: logger)
            let app: any ApplicationProtocol
            do {
                app = try KeyBrokerServer.application(
                    core: core,
                    counters: counters,
                    host: host,
                    port: port,
                    tls: tls,
                    logger: logger
                ) { bound in
                    core.setBaseURL("\(scheme)://\(host):\(bound)")
                    logger.notice("key broker listening", metadata: ["port": "\(bound)", "scheme": "\(scheme)"])
                }
            } catch {
                try? await counters?.close()
                throw error
            }
            return KeyBrokerLaunch(app: app, core: core, store: store, enclave: enclave, counters: counters)
        } catch {
            await enclave.terminate()
            if let error = error as? KeyringDecision { throw RuntimeFailure(message: error.description) }
            if let error = error as? ServiceError { throw RuntimeFailure(message: error.message) }
            throw error
        }
    }
}

/// Why an instance can't start with the keyring it has.
enum KeyringDecision: Error, CustomStringConvertible {
    /// The shared database holds keys under `recorded`, and the data directory has no sealed keyring.
    case joinNeeded(recorded: String, sealedPath: String)
    /// The data directory's own SQLite database holds keys under `recorded`, and its sealed keyring is gone.
    case keyringLost(recorded: String, sealedPath: String)

    var description: String {
        switch self {
        case .joinNeeded(let recorded, let sealedPath):
            "the database holds keys under keyring \(recorded), and this instance has no sealed keyring "
                + "(\(sealedPath)): join a running instance with --join https://RUNNING-INSTANCE "
                + "--join-admin-token-file FILE (and --join-cert or --join-pin); a new keyring over this database "
                + "could not read its keys"
        case .keyringLost(let recorded, let sealedPath):
            "the data directory's database holds keys under keyring \(recorded), but the sealed keyring "
                + "\(sealedPath) is missing: restore it from a backup (a new keyring could not read these keys; "
                + "replicas share a keyring over --database with --join)"
        }
    }
}
