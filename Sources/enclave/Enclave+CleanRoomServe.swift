import ArgumentParser
import AttestationClient
import AttestationService
import CleanRoomHost
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import Logging
import NIOCore

#if Postgres
import CleanRoomHostPostgres
#endif

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom serve`: the clean room's untrusted host.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the clean room's untrusted host (HTTPS API, store, status page) and its enclave.",
            discussion: """
                Starts with no set-up: SQLite and the encrypted data sets in the data directory (--database keeps \
                the records in PostgreSQL instead; the files stay there), a self-signed TLS certificate there, the \
                clean room enclave loaded from beside this executable (signature IMAGE.sig). \
                The host stores only what the parties submit: the contract, signatures, halt statements and \
                ciphertext; it never holds a data key. Parties submit with PUT /contract, POST /signatures, \
                POST /halts, PUT /datasets/NAME (signed by the data set's owner: X-Owner-Signature over the SHA-256 declared \
                in X-Upload-SHA256, checked before the body is read; one upload at a time per data set; with \
                ?key=NAME the host gets the owner's key released by the key broker to the attested clean room and \
                loads the data set); GET / is a read-only status page. Key release uses the attestation service \
                (--attestation) and the key broker (--broker), by default the local ones of `enclave serve`, \
                trusted by the TLS certificates in their data directories. The clean room's durable state (privacy \
                budget, receipt chain) is counted by the key broker's rollback counter for the contract (the enclave \
                binds the broker's signing key as counterKey, which the owners' release policy requires; each \
                increment carries a fresh attestation token of the clean room). Stops on SIGINT or SIGTERM.
                """
        )

        @OptionGroup var attestationOptions: AttestationServiceOptions

        @Option(help: "The key broker's URL.")
        var broker = "https://127.0.0.1:8443"

        @Option(help: "The key broker's TLS certificate (PEM; default: the one in its data directory).")
        var brokerCert: String?

        @Option(help: "Address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on (0: any free port).")
        var port = 8444

        @Option(help: "Data directory (default: $XDG_DATA_HOME/enclavekit/cleanroom).")
        var dataDir: String?

        @Option(
            help: """
                PostgreSQL URL (postgres://user@host[:port]/database[?sslmode=disable|allow|prefer|require|\
                verify-ca|verify-full&sslrootcert=FILE|system]) for the records (contract, signatures, halts, data \
                set records, runs) instead of SQLite in the data directory; the data set files, their upload \
                signatures and the sealed state stay in the data directory. The password comes from \
                --database-password-file or $PGPASSWORD. Without sslmode: verify-full, or prefer when the host is \
                loopback; toward any other host the modes that don't verify the server are refused (see \
                --allow-unverified-database-tls); verify-ca needs sslrootcert=FILE.
                """
        )
        var database: String?

        @Option(help: "A file holding the PostgreSQL password (else $PGPASSWORD); a password in --database is refused.")
        var databasePasswordFile: String?

        @Flag(help: EnclaveCommand.Serve.Attestation.allowUnverifiedDatabaseTLSHelp)
        var allowUnverifiedDatabaseTls = false

        @Option(help: "A contract (canonical JSON) to submit at start (it can also be PUT to /contract).")
        var contract: String?

        @Option(help: "The clean room enclave image (default: CleanRoomEnclave beside this executable).")
        var enclave: String?

        @Option(help: "The enclave's signature file (default: IMAGE.sig).")
        var enclaveSignature: String?

        @Option(help: "The largest encrypted data set accepted, in MiB.")
        var maxDataSetMib: Int64 = 1024

        @Option(
            help: """
                The rate, in KiB/s, an upload (or any request body) must keep up once the 30 s body deadline has \
                passed: each KiB received moves the deadline 1/rate s later, so a large data set arriving at this \
                rate is served whatever its size while a trickle is still cut at 30 s. 1 to 1048576.
                """
        )
        var minUploadRateKib = CleanRoomServer.minimumUploadRate >> 10

        @Option(help: "The TLS certificate chain (PEM, leaf first). Default: a self-signed one in the data directory.")
        var tlsCert: String?

        @Option(help: "The TLS certificate's private key (PEM).")
        var tlsKey: String?

        @Flag(help: "Serve plain HTTP instead of HTTPS (only on a loopback address).")
        var insecureHttp = false

        func validate() throws {
            if insecureHttp, !AttestationServer.isLoopback(host) {
                throw ValidationError("--insecure-http serves plain HTTP, which is allowed only on loopback")
            }
            guard (tlsCert == nil) == (tlsKey == nil) else {
                throw ValidationError("--tls-cert and --tls-key go together")
            }
            guard (1...(1 << 20)).contains(maxDataSetMib) else {
                throw ValidationError("--max-data-set-mib must be between 1 and 1048576")
            }
            guard (1...(1 << 20)).contains(minUploadRateKib) else {
                throw ValidationError("--min-upload-rate-kib must be between 1 and 1048576")
            }
            if let database, URLComponents(string: database)?.password != nil {
                throw ValidationError(
                    "a password in --database is visible to every user of this machine; "
                        + "use --database-password-file or $PGPASSWORD"
                )
            }
            if databasePasswordFile != nil, database == nil {
                throw ValidationError("--database-password-file goes with --database")
            }
        }

        func run() async throws {
            let logger = Logger(label: "enclavekit.cleanroom")
            let directory = dataDir ?? Self.defaultDataDirectory()
            let tls = try tlsIdentity(dataDirectory: directory, logger: logger)
            let store: CleanRoomStore
            do {
                store = try await openStore(directory: directory)
            } catch let error as EnclaveError {
                throw ValidationError(error.reason)
            }
            let path = enclave ?? Self.besideExecutable("CleanRoomEnclave")
            let services: (release: CleanRoomKeyRelease, broker: KeyBrokerClient)?
            do { services = try keyRelease() } catch {
                try? await store.close()
                throw error
            }
            var options = Enclave.Options()
            options.signaturePath = enclaveSignature
            options.ocalls = CleanRoomHost.ocalls(directory: directory)
            // The key broker's rollback counter for the durable state (privacy budget, receipt chain): the enclave
            // binds the broker's key as counterKey, which the owners' release policy requires.
            let tokens = EnclaveCommand.CleanRoomCLI.CounterTokenSource()
            if let services {
                CleanRoomStore.registerCounterCalls(
                    &options.ocalls,
                    link: EnclaveCommand.CleanRoomCLI.counterLink(broker: services.broker, tokens: tokens) {
                        try await store.contract()
                    }
                )
            }
            let loaded: Enclave
            do {
                loaded = try await Enclave.load(path: path, options: options)
            } catch let error as EnclaveError {
                try? await store.close()
                throw RuntimeFailure(message: "cannot load the clean room enclave \(path): \(error.reason)")
            }
            do {
                let room = try await CleanRoomHost(
                    store: store,
                    enclave: loaded,
                    limits: .init(maxDataSetBytes: maxDataSetMib << 20),
                    keyRelease: services?.release
                )
                tokens.set(room)
                if let contract {
                    let bytes = try Files.read(contract, what: "contract", limit: 1 << 20)
                    let id = try await room.submitContract(bytes)
                    FileHandle.standardOutput.write(Data("Clean room contract \(id.hex)\n".utf8))
                }
                var limits = CleanRoomServer.defaultLimits
                limits.minimumBodyRate = minUploadRateKib << 10
                let app = try CleanRoomServer.application(
                    host: room,
                    address: host,
                    port: port,
                    tls: tls,
                    limits: limits,
                    logger: logger
                ) { [limits] port in
                    let scheme = tls == nil ? "http" : "https"
                    let rate = (limits.minimumBodyRate ?? 0) >> 10
                    let seconds = limits.bodyTimeout.nanoseconds / 1_000_000_000
                    FileHandle.standardOutput.write(
                        Data("Uploads: \(seconds) s for a body, then at least \(rate) KiB/s\n".utf8)
                    )
                    FileHandle.standardOutput.write(Data("Clean room host on \(scheme)://\(host):\(port)/\n".utf8))
                }
                try await app.runService()
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                await Self.close(store, loaded)
                throw RuntimeFailure(
                    message: "cannot listen on \(host):\(port): the port is in use by another process "
                        + "(choose another --port, or --port 0 for any free port)"
                )
            } catch let error as ServiceError {
                await Self.close(store, loaded)
                FileHandle.standardError.write(Data("Error: \(error.code): \(error.message)\n".utf8))
                throw ExitCode(1)
            } catch {
                await Self.close(store, loaded)
                throw error
            }
            await Self.close(store, loaded)
        }

        /// The store: SQLite in the data directory, or the records on PostgreSQL with `--database` (the files stay in
        /// the data directory either way).
        func openStore(directory: String) async throws -> CleanRoomStore {
            guard let database else { return try await CleanRoomStore.open(directory: directory) }
            #if Postgres
            return try await EnclaveCommand.Serve.Attestation.openPostgres(
                database,
                passwordFile: databasePasswordFile,
                allowUnverifiedTLS: allowUnverifiedDatabaseTls
            ) {
                try await PostgresCleanRoomStore.open(
                    directory: directory,
                    url: $0,
                    password: $1,
                    allowUnverifiedTLS: $2
                )
            }
            #else
            throw EnclaveCommand.Serve.Attestation.withoutPostgres(database)
            #endif
        }

        /// The key release through the attestation service and the broker; nil (with a note) when their default
        /// certificates are not there (no `enclave serve` ran on this machine) and none was given.
        func keyRelease() throws -> (release: CleanRoomKeyRelease, broker: KeyBrokerClient)? {
            let brokerPath =
                brokerCert ?? EnclaveCommand.Serve.KeyBroker.defaultDataDirectory() + "/tls/certificate.pem"
            let attestationPath =
                attestationOptions.attestationCert
                ?? EnclaveCommand.Serve.Attestation.defaultDataDirectory() + "/tls/certificate.pem"
            let brokerHTTPS = !broker.hasPrefix("http://")
            let attestationHTTPS = !attestationOptions.attestation.hasPrefix("http://")
            if (brokerHTTPS && brokerCert == nil && !FileManager.default.fileExists(atPath: brokerPath))
                || (attestationHTTPS && attestationOptions.attestationCert == nil
                    && !FileManager.default.fileExists(atPath: attestationPath))
            {
                FileHandle.standardOutput.write(
                    Data(
                        ("Key release off: no TLS certificate of the local attestation service and key broker "
                            + "(run `enclave serve`, or give --attestation-cert and --broker-cert)\n").utf8
                    )
                )
                return nil
            }
            guard let url = URL(string: broker), url.scheme == "https" || url.scheme == "http" else {
                throw ValidationError("--broker is an https:// URL, not \(broker)")
            }
            let trust: ServiceTrust
            do { trust = brokerHTTPS ? try .certificateFile(brokerPath) : .system } catch {
                throw ValidationError("cannot trust the key broker: \(Files.describe(error))")
            }
            FileHandle.standardOutput.write(
                Data("Key release: attestation service \(attestationOptions.attestation), key broker \(broker)\n".utf8)
            )
            FileHandle.standardOutput.write(Data("Rollback counter: key broker \(broker)\n".utf8))
            let client = KeyBrokerClient(endpoint: url, trust: trust)
            let release = EnclaveCommand.CleanRoomCLI.keyRelease(
                attestation: try attestationOptions.client(),
                broker: client
            )
            return (release, client)
        }

        static func close(_ store: CleanRoomStore, _ enclave: Enclave) async {
            try? await store.close()
            await enclave.terminate()
        }

        func tlsIdentity(dataDirectory: String, logger: Logger) throws -> TLSIdentity? {
            try ServedTLS.identity(
                service: "Clean room host ",
                insecureHttp: insecureHttp,
                certificate: tlsCert,
                key: tlsKey,
                dataDirectory: dataDirectory,
                host: host,
                logger: logger
            )
        }

        static func defaultDataDirectory() -> String {
            let base = ProcessInfo.processInfo.environment["XDG_DATA_HOME"] ?? (NSHomeDirectory() + "/.local/share")
            return base + "/enclavekit/cleanroom"
        }

        static func besideExecutable(_ name: String) -> String {
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            return executable.deletingLastPathComponent().appendingPathComponent(name).path
        }
    }
}
