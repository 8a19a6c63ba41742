import ArgumentParser
import AttestationClient
import Foundation

/// How to reach the attestation service: its URL, and which server certificate to trust over HTTPS.
struct ServiceOptions: ParsableArguments {
    @Option(help: "The service's base URL (https://HOST:PORT; http:// only for a loopback service).")
    var service: String

    @Option(help: "Trust this CA or self-signed certificate (PEM), as curl --cacert does.")
    var caCert: String?

    @Option(help: "Trust only the server certificate with this SHA-256 (as `serve attestation` prints it).")
    var pinSha256: String?

    func validate() throws {
        guard caCert == nil || pinSha256 == nil else {
            throw ValidationError("--ca-cert and --pin-sha256 exclude each other")
        }
        if let url = URL(string: service), url.scheme?.lowercased() == "http", !AttestationClient.isLoopback(url) {
            throw ValidationError("--service over http:// only to a loopback service; use https://")
        }
    }

    func client() throws -> AttestationClient {
        guard let url = URL(string: service), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme)
        else {
            throw ValidationError("--service is not an http(s) URL")
        }
        // Plain HTTP only to a service on this machine: over the network an attacker could answer /certs and the
        // OpenID configuration with keys of its own, and its tokens would verify.
        guard scheme == "https" || AttestationClient.isLoopback(url) else {
            throw ValidationError("--service over http:// only to a loopback service; use https://")
        }
        do {
            if let caCert { return AttestationClient(endpoint: url, trust: try .certificateFile(caCert)) }
            if let pinSha256 { return AttestationClient(endpoint: url, trust: try .pinned(sha256: pinSha256)) }
        } catch let failure as AttestationClient.Failure {
            throw ValidationError(failure.message)
        }
        return AttestationClient(endpoint: url, trust: .system)
    }
}

extension EnclaveCommand {
    struct Attest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send evidence to an attestation service and print the token."
        )

        @OptionGroup var connection: ServiceOptions

        @Option(help: "Attestation type: SgxEnclave, OpenEnclave, TdxVm, SevSnpVm or SimulatedEnclave.")
        var type = "SimulatedEnclave"

        @Argument(help: "The evidence file.")
        var evidence: String

        @Option(help: "Runtime data file, bound by the evidence (its SHA-256 leads the report data).")
        var runtimeData: String?

        @Flag(help: "The runtime data is JSON (dataType JSON) rather than binary.")
        var json = false

        @Option(help: "A nonce to echo in the token.")
        var nonce: String?

        func run() async throws {
            let client = try connection.client()
            let runtime = try runtimeData.map {
                AttestationClient.RuntimeData(
                    data: try Files.read($0, what: "runtime data"),
                    dataType: json ? .json : .binary
                )
            }
            do {
                print(
                    try await client.attest(
                        type: type,
                        evidence: try Files.read(evidence, what: "evidence", limit: 1 << 20),
                        runtimeData: runtime,
                        nonce: nonce
                    )
                )
            } catch let failure as AttestationClient.Failure where failure.status == 0 || failure.status >= 500 {
                // Unreachable, untrusted or failing service: a runtime failure (exit 70), not a refusal.
                throw failure
            } catch let failure as AttestationClient.Failure {
                throw Failure(check: "attestation", reason: failure.description)
            }
        }
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attestation tokens.",
            subcommands: [VerifyToken.self]
        )

        struct VerifyToken: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify",
                abstract: "Verify a token against the service's keys and print its claims, or why it fails."
            )

            @OptionGroup var connection: ServiceOptions

            @Argument(help: "The token, or a file holding it.")
            var token: String

            @Option(help: "The nonce the token must carry.")
            var nonce: String?

            func run() async throws {
                let client = try connection.client()
                let text =
                    FileManager.default.fileExists(atPath: token)
                    ? try Files.readText(token, what: "token").trimmingCharacters(in: .whitespacesAndNewlines) : token
                let verifier: TokenVerifier
                do {
                    verifier = try await client.verifier()
                } catch let failure as AttestationClient.Failure {
                    // The keys could not be fetched: a runtime failure (exit 70), not a refusal of the token.
                    throw RuntimeFailure(message: "cannot fetch the service's signing keys: \(failure.description)")
                }
                do {
                    let claims = try await verifier.verify(text, nonce: nonce)
                    for (key, value) in claims.claims.sorted(by: { $0.key < $1.key }) { print("\(key): \(value)") }
                } catch let failure as TokenVerifier.Failure {
                    throw Failure(check: "token", reason: failure.reason)
                }
            }
        }
    }
}
