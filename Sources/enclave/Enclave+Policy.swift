import ArgumentParser
import AttestationClient
import AttestationService
import Crypto
import Foundation
import X509

/// Who changes a policy: the administrator token, or a policy signer's key and certificate.
struct PolicyAuthorityOptions: ParsableArguments {
    @Option(help: "The service's administrator token file (services without --policy-signer).")
    var adminTokenFile: String?

    @Option(help: "A policy signer's private key (PEM, P-256), for services started with --policy-signer.")
    var signerKey: String?

    @Option(help: "The policy signer's certificate (PEM), as given to the service's --policy-signer.")
    var signerCert: String?

    @Option(help: "The signed request's version: greater than any the service accepted (default: now, in ms).")
    var version: Int64?

    @Option(
        help: """
            The service a signed request is for: its issuer URL (the service's --issuer; default: --service). The \
            service refuses a request signed for another one.
            """
    )
    var audience: String?

    func validate() throws {
        guard (signerKey == nil) == (signerCert == nil) else {
            throw ValidationError("--signer-key and --signer-cert go together")
        }
        guard (adminTokenFile == nil) != (signerKey == nil) else {
            throw ValidationError("give either --admin-token-file or --signer-key with --signer-cert")
        }
        if let version, version <= 0 { throw ValidationError("--version is a positive integer") }
    }

    /// The request body and the bearer token for `operation` on `type` at the service `service`.
    func request(
        _ operation: AttestationServiceCore.PolicyOperation,
        type: AttestationType,
        text: String?,
        service: String
    ) throws -> (jws: String?, token: String?) {
        if let adminTokenFile {
            let token = try Files.readText(adminTokenFile, what: "administrator token")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return (text.map(AttestationServiceCore.unsignedPolicyJWS), token)
        }
        guard let signerKey, let signerCert,
            let key = try? P256.Signing.PrivateKey(pemRepresentation: Files.readText(signerKey, what: "signer key"))
        else {
            throw ValidationError("--signer-key is not a P-256 private key (PEM)")
        }
        guard let certificate = try? Certificate(pemEncoded: Files.readText(signerCert, what: "signer certificate"))
        else {
            throw ValidationError("--signer-cert is not a PEM certificate")
        }
        let jws = try AttestationServiceCore.signedPolicyJWS(
            text,
            audience: audience ?? service,
            type: type,
            operation: operation,
            version: version ?? Int64(Date().timeIntervalSince1970 * 1000),
            key: key,
            certificate: certificate
        )
        return (jws, nil)
    }
}

extension EnclaveCommand {
    struct Policy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read or change an attestation service's policies.",
            subcommands: [Get.self, SetPolicy.self, Reset.self]
        )

        static func type(_ name: String) throws -> AttestationType {
            guard let type = AttestationType(rawValue: name) else {
                throw ValidationError(
                    "--type is one of " + AttestationType.allCases.map(\.rawValue).joined(separator: ", ")
                )
            }
            return type
        }

        static func run(_ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch let failure as AttestationClient.Failure {
                FileHandle.standardError.write(Data("policy: \(failure.description)\n".utf8))
                throw ExitCode.failure
            }
        }

        struct Get: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the policy of an attestation type.")

            @OptionGroup var connection: ServiceOptions

            @Option(help: "Attestation type: SgxEnclave, OpenEnclave, TdxVm, SevSnpVm or SimulatedEnclave.")
            var type: String

            func run() async throws {
                let client = try connection.client()
                try await Policy.run { print(try await client.policy(type: try Policy.type(type).rawValue)) }
            }
        }

        struct SetPolicy: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Set the policy of an attestation type from a policy text file."
            )

            @OptionGroup var connection: ServiceOptions

            @OptionGroup var authority: PolicyAuthorityOptions

            @Option(help: "Attestation type: SgxEnclave, OpenEnclave, TdxVm, SevSnpVm or SimulatedEnclave.")
            var type: String

            @Argument(help: "The policy (MAA's policy language).")
            var policy: String

            func run() async throws {
                let kind = try Policy.type(type)
                let text = try Files.readText(policy, what: "policy")
                let (jws, token) = try authority.request(.set, type: kind, text: text, service: connection.service)
                let client = try connection.client()
                try await Policy.run {
                    try await client.setPolicy(type: kind.rawValue, jws: jws ?? "", adminToken: token)
                }
                print("policy of \(kind.rawValue) set")
            }
        }

        struct Reset: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Reset the policy of an attestation type to the service's default."
            )

            @OptionGroup var connection: ServiceOptions

            @OptionGroup var authority: PolicyAuthorityOptions

            @Option(help: "Attestation type: SgxEnclave, OpenEnclave, TdxVm, SevSnpVm or SimulatedEnclave.")
            var type: String

            func run() async throws {
                let kind = try Policy.type(type)
                let (jws, token) = try authority.request(.reset, type: kind, text: nil, service: connection.service)
                let client = try connection.client()
                try await Policy.run { try await client.resetPolicy(type: kind.rawValue, jws: jws, adminToken: token) }
                print("policy of \(kind.rawValue) reset")
            }
        }
    }
}
