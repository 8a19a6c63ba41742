import ArgumentParser
import AttestationClient
import Foundation

extension EnclaveCommand {
    struct Attest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send evidence to an attestation service and print the token."
        )

        @Option(help: "The service's base URL.")
        var service: String

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
            guard let url = URL(string: service) else { throw ValidationError("--service is not a URL") }
            let client = AttestationClient(endpoint: url)
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

            @Option(help: "The service's base URL (its /certs and issuer are fetched).")
            var service: String

            @Argument(help: "The token, or a file holding it.")
            var token: String

            @Option(help: "The nonce the token must carry.")
            var nonce: String?

            func run() async throws {
                guard let url = URL(string: service) else { throw ValidationError("--service is not a URL") }
                let text =
                    FileManager.default.fileExists(atPath: token)
                    ? try Files.readText(token, what: "token").trimmingCharacters(in: .whitespacesAndNewlines) : token
                let verifier = try await AttestationClient(endpoint: url).verifier()
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
