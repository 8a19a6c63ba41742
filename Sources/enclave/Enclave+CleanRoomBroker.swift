import ArgumentParser
import Attestation
import AttestationClient
import AttestationService
import CleanRoomHost
import EnclaveCore
import Foundation

/// Where the attestation service is and how to trust it (default: the local one of `enclave serve`).
struct AttestationServiceOptions: ParsableArguments {
    @Option(help: "The attestation service's URL.")
    var attestation = "https://127.0.0.1:8080"

    @Option(help: "The attestation service's TLS certificate (PEM; default: the one in its data directory).")
    var attestationCert: String?

    func client() throws -> AttestationClient {
        guard let url = URL(string: attestation), url.scheme == "https" || url.scheme == "http" else {
            throw ValidationError("--attestation is an https:// URL, not \(attestation)")
        }
        if url.scheme == "http" { return AttestationClient(endpoint: url) }
        let path =
            attestationCert ?? EnclaveCommand.Serve.Attestation.defaultDataDirectory() + "/tls/certificate.pem"
        do {
            return AttestationClient(endpoint: url, trust: try .certificateFile(path))
        } catch {
            throw ValidationError("cannot trust the attestation service: \(Files.describe(error))")
        }
    }
}

extension EnclaveCommand.CleanRoomCLI {
    /// A failure of the attestation service or the key broker, as the host reports it (its code kept).
    static func serviceError(_ failure: AttestationClient.Failure) -> ServiceError {
        let status = (400...599).contains(failure.status) ? failure.status : 502
        return ServiceError(status: .init(code: status), code: failure.code, message: failure.message)
    }

    /// The host's key release: evidence to the attestation service (runtime data as JSON), the token to the broker.
    static func keyRelease(attestation: AttestationClient, broker: KeyBrokerClient) -> CleanRoomKeyRelease {
        CleanRoomKeyRelease(
            attest: { runtimeData, evidence in
                do {
                    return try await attestation.attest(
                        try Evidence(evidence),
                        runtimeData: .init(data: runtimeData, dataType: .json)
                    )
                } catch let failure as AttestationClient.Failure {
                    throw serviceError(failure)
                }
            },
            release: { name, version, token in
                do {
                    return try await broker.release(
                        name: name,
                        version: version,
                        KeyReleaseParameters(target: token, enc: "ECDH-ES+A256KW")
                    )
                } catch let failure as AttestationClient.Failure {
                    throw serviceError(failure)
                }
            }
        )
    }
}
