import ArgumentParser
import AttestationClient
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBrokerService
import SecretProcessingInterface

/// The untrusted host of the secret-processing sample: loads the enclave, hands it the owner's encrypted file, and
/// carries evidence to the attestation service and the token to the key broker for it (`KeyReleaseCourier`). It
/// never holds the key, the file's plaintext or the result's: only opaque bytes.
@main
struct SecretProcessingHost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Have the secret-processing enclave get a broker key released, decrypt a file and summarise it.",
        discussion: """
            Exit status: 0 processed (the result is written), 3 the broker refused to release the key to this \
            enclave (its reason printed), 1 any other failure.
            """
    )

    @Option(help: "The signed SecretProcessingEnclave image.") var enclave: String
    @Option(help: "The signature structure, if not IMAGE.sig beside the image.") var signature: String?
    @Flag(help: "Allow a debug-signed enclave.") var debug = false

    @Option(help: "The attestation service (the one the key's release policy names).")
    var attestation = "https://127.0.0.1:8080"
    @Option(help: "Its TLS certificate (default: the one `enclave serve` wrote in its data directory).")
    var attestationCert: String?
    @Option(help: "The key broker.") var broker = "https://127.0.0.1:8443"
    @Option(help: "Its TLS certificate (default: the one `enclave serve` wrote in its data directory).")
    var brokerCert: String?
    @Option(
        help: """
            The broker's release signing certificate (PEM or DER) or its P-256 public key (PEM), as the owner pinned \
            it (`enclave keys verify-broker --signing-cert-out`). Default: the one the broker \
            answers on GET /attestation (a substitute could not decrypt the owner's file: its data key is wrapped to \
            the real broker key).
            """
    )
    var brokerSigningCert: String?

    @Option(help: "The broker key the file is encrypted under.") var key: String
    @Argument(help: "The encrypted file (`enclave keys encrypt`).") var input: String
    @Argument(help: "Where to write the encrypted result.") var output: String

    static func dataDirectory(_ service: String) -> String {
        (ProcessInfo.processInfo.environment["XDG_DATA_HOME"] ?? (NSHomeDirectory() + "/.local/share"))
            + "/enclavekit/" + service
    }

    static func url(_ text: String, _ option: String) throws -> URL {
        guard let url = URL(string: text), url.scheme == "https" || url.scheme == "http" else {
            throw ValidationError("--\(option) is an https:// URL, not \(text)")
        }
        return url
    }

    func clients() throws -> (AttestationClient, KeyBrokerClient) {
        let attestationURL = try Self.url(attestation, "attestation")
        let brokerURL = try Self.url(broker, "broker")
        let service =
            attestationURL.scheme == "http"
            ? AttestationClient(endpoint: attestationURL)
            : AttestationClient(
                endpoint: attestationURL,
                trust: try .certificateFile(
                    attestationCert ?? Self.dataDirectory("attestation") + "/tls/certificate.pem"
                )
            )
        let broker =
            brokerURL.scheme == "http"
            ? KeyBrokerClient(endpoint: brokerURL, trust: .system)
            : KeyBrokerClient(
                endpoint: brokerURL,
                trust: try .certificateFile(brokerCert ?? Self.dataDirectory("keybroker") + "/tls/certificate.pem")
            )
        return (service, broker)
    }

    /// The broker's release signing key, raw P-256 (`x ‖ y`).
    func brokerKey(_ broker: KeyBrokerClient) async throws -> [UInt8] {
        let der: [UInt8]
        if let brokerSigningCert {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: brokerSigningCert)))
            let text = String(decoding: bytes, as: UTF8.self)
            if text.contains("-----BEGIN PUBLIC KEY-----") {
                guard let key = try? P256.Signing.PublicKey(pemRepresentation: text) else {
                    throw ValidationError("\(brokerSigningCert) is not a P-256 public key")
                }
                return Array(key.rawRepresentation)
            }
            if text.contains("-----BEGIN CERTIFICATE-----") {
                let body = text.components(separatedBy: "-----BEGIN CERTIFICATE-----")[1]
                    .components(separatedBy: "-----END CERTIFICATE-----")[0]
                der = Array(Data(base64Encoded: body, options: .ignoreUnknownCharacters) ?? Data())
            } else {
                der = bytes
            }
        } else {
            der = Array(Data(base64Encoded: try await broker.attestation().certificate) ?? Data())
        }
        guard let raw = BrokerCertificate.p256PublicKey(der: der) else {
            throw ValidationError("the broker's signing certificate does not hold a P-256 key")
        }
        return raw
    }

    func run() async throws {
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: input)))
        let (service, broker) = try clients()
        let pinned = try await brokerKey(broker)
        var options = Enclave.Options()
        options.debug = debug
        options.signaturePath = signature
        KeyReleaseCourier(attestation: service, broker: broker).register(in: &options.ocalls)
        let loaded: Enclave
        do {
            loaded = try await Enclave.load(path: enclave, options: options)
        } catch let error as EnclaveError {
            throw ValidationError("cannot load \(enclave): \(error.reason)")
        }
        print("==> loaded \(enclave); asking it to process \(input) (\(file.count) encrypted bytes) under key \(key)")
        let result: ProcessResult
        do {
            result = try await loaded.call(
                ProcessSecret.self,
                ProcessRequest(file: file, keyName: key, brokerKey: pinned)
            )
        } catch let error as EnclaveError {
            await loaded.terminate()
            for code in ["PolicyNotSatisfied", "KeyNotExportable", "KeyNotFound", "UntrustedAuthority"]
            where error.reason.contains(code) {
                print("==> refused: the broker did not release \(key) to this enclave: \(code) (\(error.reason))")
                throw ExitCode(3)
            }
            print("==> failed: \(error.reason)")
            throw ExitCode(1)
        }
        await loaded.terminate()
        try Data(result.result).write(to: URL(fileURLWithPath: output), options: .atomic)
        print(
            "==> released: the broker released \(result.keyID) to this enclave, which read \(result.rows) rows of "
                + "\(result.columns) columns and wrote the statistics encrypted under that key to \(output) "
                + "(\(result.result.count) bytes)"
        )
    }
}
