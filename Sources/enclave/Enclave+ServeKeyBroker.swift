import ArgumentParser
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
                """
        )

        @Option(help: "Address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on (0: any free port).")
        var port = 8443

        @Option(help: "Data directory (default: $XDG_DATA_HOME/enclavekit/keybroker).")
        var dataDir: String?

        @Option(help: "PostgreSQL URL, for replicas sharing one database (not available in this build yet).")
        var database: String?

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

        func validate() throws {
            if insecureHttp, !AttestationServer.isLoopback(host) {
                throw ValidationError("--insecure-http serves plain HTTP, which is allowed only on loopback")
            }
            guard (tlsCert == nil) == (tlsKey == nil) else {
                throw ValidationError("--tls-cert and --tls-key go together")
            }
            for value in authority { _ = try AuthoritySpec(value) }
        }

        func run() async throws {
            let logger = Logger(label: "enclavekit.keybroker")
            let dataDirectory = dataDir ?? Self.defaultDataDirectory()
            guard database == nil else {
                throw ValidationError("--database (PostgreSQL replicas) is not available in this build yet")
            }
            let authorities = try await resolveAuthorities(logger: logger)
            let launched = try await KeyBrokerLaunch.start(
                dataDirectory: dataDirectory,
                host: host,
                port: port,
                authorities: authorities,
                enclavePath: brokerEnclave,
                debugEnclave: debugEnclave,
                adminTokenFile: adminTokenFile,
                tls: try tlsIdentity(dataDirectory: dataDirectory),
                logger: logger
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

        func tlsIdentity(dataDirectory: String) throws -> TLSIdentity? {
            if insecureHttp { return nil }
            do {
                let identity =
                    if let tlsCert, let tlsKey {
                        try TLSIdentity(certificatePath: tlsCert, keyPath: tlsKey)
                    } else {
                        try TLSIdentity.selfSigned(directory: dataDirectory, hostnames: [host])
                    }
                FileHandle.standardOutput.write(
                    Data("Key broker TLS certificate SHA-256 fingerprint: \(identity.fingerprint)\n".utf8)
                )
                return identity
            } catch let error as EnclaveError {
                throw ValidationError(error.reason)
            } catch let error as ServiceError {
                throw ValidationError(error.message)
            }
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
                let trust: ServiceTrust
                if authority.isEmpty {
                    let tls = (attestationDataDir ?? Self.attestationDataDirectory()) + "/tls/certificate.pem"
                    trust = try ServiceTrust.certificateFile(tls)
                } else {
                    trust = .system
                }
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

/// A key broker ready to serve: store, broker enclave, core and application (shared by `serve keybroker` and
/// `serve`).
struct KeyBrokerLaunch {
    let app: any ApplicationProtocol
    let core: KeyBrokerCore
    let store: SQLiteKeyBrokerStore
    let enclave: Enclave

    func close() async {
        try? await store.close()
        await enclave.terminate()
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
        logger: Logger
    ) async throws -> KeyBrokerLaunch {
        let path = enclavePath(given)
        let store: SQLiteKeyBrokerStore
        let admin: AdminCredential
        do {
            store = try await SQLiteKeyBrokerStore.open(directory: dataDirectory)
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
                try? await store.close()
                throw RuntimeFailure(message: "cannot sign the broker enclave \(path): \(Files.describe(error))")
            }
        }
        let enclave: Enclave
        do {
            enclave = try await Enclave.load(path: path, options: options)
        } catch let error as EnclaveError {
            try? await store.close()
            throw RuntimeFailure(message: "cannot load the broker enclave \(path): \(error.reason)")
        }
        do {
            let scheme = tls == nil ? "http" : "https"
            let engine = try await EnclaveBrokerEngine.open(
                enclave: enclave,
                sealedKeyringPath: dataDirectory + "/keyring.sealed",
                authorities: authorities,
                brokerName: "\(scheme)://\(host):\(port)"
            )
            let core = try await KeyBrokerCore(
                store: store,
                engine: engine,
                configuration: .init(adminCredential: admin),
                baseURL: "\(scheme)://\(host):\(port)"
            )
            let app = try KeyBrokerServer.application(
                core: core,
                host: host,
                port: port,
                tls: tls,
                logger: logger
            ) { bound in
                core.setBaseURL("\(scheme)://\(host):\(bound)")
                logger.notice("key broker listening", metadata: ["port": "\(bound)", "scheme": "\(scheme)"])
            }
            return KeyBrokerLaunch(app: app, core: core, store: store, enclave: enclave)
        } catch {
            try? await store.close()
            await enclave.terminate()
            if let error = error as? ServiceError { throw RuntimeFailure(message: error.message) }
            throw error
        }
    }
}
