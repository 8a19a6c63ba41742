import ArgumentParser
import Attestation
import AttestationAPI
import AttestationClient
import AttestationService
import CleanRoom
import CleanRoomHost
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import _CryptoExtras

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

    /// The broker's import key, after checking the broker's evidence with the attestation service: the service
    /// verifies the evidence and that it binds the runtime data (which holds the import key), the token must verify
    /// against the service's keys, be for a non-debug enclave and, with `signer`, of that signer. The key wrapped to
    /// is the one in the attested runtime data, never one the broker's host could swap.
    static func attestedImportKey(
        broker: KeyBrokerClient,
        attestation: AttestationClient,
        signer: String?
    ) async throws -> (key: _RSA.Encryption.PublicKey, kid: String?, signer: String) {
        let document = try await broker.attestation()
        guard let evidenceBytes = Base64URL.decode(document.evidence),
            let runtime = Base64URL.decode(document.runtimeData),
            let evidence = try? WireJSON.decode(AttestationEvidence.self, from: evidenceBytes)
        else { throw RuntimeFailure(message: "the broker's attestation does not decode") }
        let token = try await attestation.attest(
            try Evidence(evidence),
            runtimeData: .init(data: runtime, dataType: .json)
        )
        let claims = try await attestation.verifier().verify(token).claims
        guard case .string(let attestedSigner)? = claims["x-ms-sgx-mrsigner"] else {
            throw RuntimeFailure(message: "the broker's token names no enclave signer")
        }
        if let signer, signer.lowercased() != attestedSigner.lowercased() {
            throw RuntimeFailure(
                message: "the broker enclave is signed by \(attestedSigner), not the expected \(signer.lowercased())"
            )
        }
        guard claims["x-ms-sgx-is-debuggable"] == .bool(false) else {
            throw RuntimeFailure(message: "the broker enclave is debuggable: a key imported into it is not protected")
        }
        struct Runtime: Decodable { let keys: [WrapJWK] }
        guard let keys = try? JSONDecoder().decode(Runtime.self, from: Data(runtime)).keys,
            let jwk = keys.first(where: { $0.kty == "RSA" && $0.kid == "import" }),
            case .rsa(let key) = try jwk.wrapTarget()
        else { throw RuntimeFailure(message: "the broker's attested runtime data holds no RSA import key") }
        return (key, jwk.kid, attestedSigner)
    }

    /// The signer of the broker enclave `enclave serve` signed in its data directory, if there is one.
    static func localBrokerSigner(dataDirectory: String) -> String? {
        guard let bytes = try? Files.read(dataDirectory + "/KeyBrokerEnclave.sig", what: "signature", limit: 1 << 20),
            let signature = try? EnclaveSignature(bytes: bytes)
        else { return nil }
        return signature.identity.signerID.hex
    }

    /// Import `dataKey` into the broker as key `name` (AES-256, exportable under `policy`), wrapped to the broker's
    /// attested import key; answers the new version.
    static func importDataKey(
        _ dataKey: SymmetricKey,
        name: String,
        policy: [UInt8],
        broker: KeyBrokerClient,
        attestation: AttestationClient,
        signer: String?
    ) async throws -> (version: String, brokerSigner: String) {
        let target = try await attestedImportKey(broker: broker, attestation: attestation, signer: signer)
        let wrapped = try dataKey.withUnsafeBytes { try RSAAESKeyWrap.wrap(Array($0), to: target.key) }
        let parameters = KeyImportParameters(
            key: KeyBrokerWebKey(kid: target.kid, kty: "oct", keyHSM: Base64URL.encode(wrapped)),
            hsm: true,
            attributes: KeyAttributes(exportable: true),
            releasePolicy: KeyReleasePolicy(data: Base64URL.encode(policy), immutable: true),
            tags: ["purpose": "cleanroom"]
        )
        let bundle = try await broker.importKey(name: name, parameters)
        let version = bundle.key.kid.map { String($0.split(separator: "/").last ?? "") } ?? ""
        return (version, target.signer)
    }
}
