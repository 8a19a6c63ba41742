import ArgumentParser
import Attestation
import AttestationService
import EnclaveHost
import Foundation
import Hummingbird
import Logging
import X509

extension EnclaveCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a service.",
            subcommands: [Attestation.self]
        )

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

            @Option(help: "PostgreSQL URL (postgres://user[:password]@host[:port]/database) instead of SQLite.")
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

            @Option(help: "Collateral for real quotes: FMSPC=FILE|DIR (dcap-qvl bundle or PCCS directory); may repeat.")
            var collateral: [String] = []

            @Option(help: "The largest request body, in bytes.")
            var maxBodySize = AttestationServer.defaultMaxBodySize

            func run() async throws {
                let logger = Logger(label: "enclavekit.attestation")
                let store: any ServiceStore
                if let database {
                    store = try await PostgresServiceStore.connect(url: database)
                } else {
                    store = try await SQLiteServiceStore.open(directory: dataDir ?? Self.defaultDataDirectory())
                }
                var configuration = AttestationServiceCore.Configuration(issuer: issuer ?? "http://\(host):\(port)")
                configuration.allowSimulated = allowSimulated
                if allowSimulated {
                    let platform = try SimulatedPlatform.open()
                    configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
                    configuration.simulatedCollateral = { time in
                        try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
                    }
                }
                for path in policySigner {
                    guard let certificate = try? Certificate(pemEncoded: Files.readText(path, what: "policy signer"))
                    else {
                        throw ValidationError("\(path) is not a PEM certificate")
                    }
                    configuration.policySigners.append(certificate)
                }
                for entry in collateral {
                    let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw ValidationError("--collateral takes FMSPC=FILE") }
                    configuration.collateral[parts[0].lowercased()] = try Collateral(contentsOf: parts[1])
                }
                let core = try await AttestationServiceCore(configuration: configuration, store: store, logger: logger)
                let app = AttestationServer.application(
                    core: core,
                    host: host,
                    port: port,
                    maxBodySize: maxBodySize,
                    logger: logger
                ) { port in
                    logger.notice("attestation service listening", metadata: ["port": "\(port)"])
                }
                try await app.runService()
                try await store.close()
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
