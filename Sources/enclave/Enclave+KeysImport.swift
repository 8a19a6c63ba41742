import ArgumentParser
import AttestationAPI
import AttestationClient
import Crypto
import EnclaveCore
import Foundation

/// What the key broker's enclave must be before a key is handed to it, and the attestation service that checks it.
struct BrokerTrustOptions: ParsableArguments {
    @Option(help: "The attestation service that checks the broker's evidence (default: the local one).")
    var attestation = "https://127.0.0.1:8080"

    @Option(help: "The attestation service's TLS certificate (PEM; default: the one in its data directory).")
    var attestationCert: String?

    @Option(
        help: """
            The broker enclave's signer (64 hex digits; default: the signer of the broker data directory's \
            KeyBrokerEnclave.sig, the signature `serve keybroker` makes on first start).
            """
    )
    var brokerSigner: String?

    @Option(help: "The broker enclave's product ID (default: the signature's).")
    var brokerProduct: Int?

    @Option(help: "The broker enclave's minimum security version (default: the signature's, else 0).")
    var brokerMinSvn: Int?

    @Flag(help: "Accept a debuggable broker enclave (development only).")
    var allowDebugBroker = false

    @Option(
        help: """
            An attestation authority the broker enclave must trust: URL (its signing certificates from URL/certs; \
            over --attestation's TLS trust when URL is --attestation, else the system's roots) or URL=CERT.pem. \
            Repeatable; the broker's evidence must name exactly these authorities and certificates. Default: \
            --attestation itself (the issuer it names) with the certificates it publishes.
            """
    )
    var brokerAuthority: [String] = []

    /// `--attestation` over plain HTTP only to a loopback service, refused while the options are checked.
    func validate() throws {
        if let url = URL(string: attestation), url.scheme == "http", !AttestationClient.isLoopback(url) {
            throw ValidationError("--attestation over http:// only to a loopback service; use https://")
        }
    }

    func attestationClient() throws -> AttestationClient {
        guard let url = URL(string: attestation), url.scheme == "https" || url.scheme == "http" else {
            throw ValidationError("--attestation is an https:// URL, not \(attestation)")
        }
        if url.scheme == "http" {
            // Plain HTTP only to a service on this machine, as for --broker: over the network an attacker could
            // answer for the service and vouch for a broker whose evidence binds its own import key.
            guard AttestationClient.isLoopback(url) else {
                throw ValidationError("--attestation over http:// only to a loopback service; use https://")
            }
            return AttestationClient(endpoint: url)
        }
        let certificate =
            attestationCert ?? EnclaveCommand.Serve.Attestation.defaultDataDirectory() + "/tls/certificate.pem"
        do {
            return AttestationClient(endpoint: url, trust: try .certificateFile(certificate))
        } catch {
            throw ValidationError("cannot trust the attestation service: \(Files.describe(error))")
        }
    }

    /// The identity and authorities to require: ``expectation(brokerDataDirectory:)`` and the `--broker-authority`
    /// values (none: `attestation` itself, which `KeyBrokerClient` resolves).
    func expectation(
        brokerDataDirectory: String,
        attestation: AttestationClient
    ) async throws -> KeyBrokerExpectation {
        var expectation = try expectation(brokerDataDirectory: brokerDataDirectory)
        guard !brokerAuthority.isEmpty else { return expectation }
        var authorities: [KeyBrokerExpectation.Authority] = []
        for value in brokerAuthority {
            let spec: AuthoritySpec
            do { spec = try AuthoritySpec(value) } catch {
                throw ValidationError("--broker-authority is URL or URL=CERT.pem, with an https:// URL: \(value)")
            }
            if let file = spec.certificateFile {
                authorities.append(
                    .init(url: spec.url, certificates: try EnclaveCommand.Serve.KeyBroker.certificates(pemFile: file))
                )
                continue
            }
            guard let url = URL(string: spec.url) else { throw ValidationError("\(spec.url) is not a URL") }
            let client =
                KeyBrokerClient.normalizeAuthority(spec.url)
                    == KeyBrokerClient.normalizeAuthority(attestation.endpoint.absoluteString)
                ? attestation : AttestationClient(endpoint: url, trust: .system)
            let jwks: String
            do { jwks = try await client.certificates() } catch {
                throw RuntimeFailure(
                    message: "cannot fetch the signing certificates of \(spec.url): \(error) (or pin them: "
                        + "--broker-authority \(spec.url)=CERT.pem)"
                )
            }
            authorities.append(
                .init(url: spec.url, certificates: try EnclaveCommand.Serve.KeyBroker.certificates(jwks: jwks))
            )
        }
        expectation.authorities = authorities
        return expectation
    }

    /// The identity to require: the options given, the rest from the broker's own signature file.
    func expectation(brokerDataDirectory: String) throws -> KeyBrokerExpectation {
        var signature: EnclaveSignature?
        let path = brokerDataDirectory + "/KeyBrokerEnclave.sig"
        if brokerSigner == nil || brokerProduct == nil || brokerMinSvn == nil,
            FileManager.default.fileExists(atPath: path)
        {
            do {
                signature = try EnclaveSignature(bytes: try Files.read(path, what: "broker signature", limit: 1 << 20))
            } catch {
                throw ValidationError("\(path) is not an enclave signature: \(Files.describe(error))")
            }
        }
        let signer: Digest32
        if let brokerSigner {
            guard let bytes = Hex.decode(brokerSigner), let digest = try? Digest32(bytes: bytes) else {
                throw ValidationError("--broker-signer is 64 hex digits")
            }
            signer = digest
        } else if let signature {
            signer = signature.signerID
        } else {
            throw ValidationError(
                "name the broker enclave's signer with --broker-signer (no \(path) to take it from): "
                    + "a key goes only to a broker enclave whose identity you checked"
            )
        }
        // One signer may sign several products: without the broker's product, another enclave of that signer
        // (a sample, a test build) would pass for the broker. Fail closed rather than check no product.
        guard let productID = brokerProduct ?? signature.map({ Int($0.body.productID) }) else {
            throw ValidationError(
                "name the broker enclave's product with --broker-product (no \(path) to take it from): "
                    + "a signer may sign other enclaves too"
            )
        }
        return KeyBrokerExpectation(
            signerID: signer,
            productID: productID,
            minimumSecurityVersion: brokerMinSvn ?? signature.map { Int($0.body.securityVersion) } ?? 0,
            allowDebug: allowDebugBroker
        )
    }
}

extension EnclaveCommand.Keys {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import your own key (bring your own key), wrapped to the broker enclave's import key.",
            discussion: """
                Before anything is sent, the broker's evidence (GET /attestation) goes to the attestation service, \
                whose token must state the broker enclave's signer, product and minimum security version \
                (--broker-signer … or its signature file in the broker's data directory) and bind the import key \
                (GET /importkey), and name exactly the attestation authorities and signing certificates expected \
                (--broker-authority; default: the attestation service itself with the certificates it publishes): a \
                broker its host had trust another certificate is refused. The key is then wrapped to that key (RSA_AES_KEY_WRAP_256): it never crosses the \
                wire or the broker's host in the clear. The key file: a PEM private key (RSA 2048/3072, P-256, \
                P-384), a private JWK, or 32 raw bytes (AES-256).
                """
        )
        @OptionGroup var options: BrokerOptions
        @OptionGroup var trust: BrokerTrustOptions
        @Argument(help: "The key's name (0-9, a-z, A-Z, -).") var name: String
        @Option(help: "The key file: PEM, JWK or 32 raw bytes.") var keyFile: String
        @Option(help: "oct, RSA or EC: refuse a key file that holds another kind.") var kty: String?
        @Flag(help: "Make the key exportable (requires --policy).") var exportable = false
        @Option(help: "A release policy (JSON file, Key Vault's grammar).") var policy: String?
        @Flag(help: "Kept for scripts: an owner's release policy is always sent immutable (the intent binds it so).")
        var immutable = false
        @Flag(
            help: """
                With --policy: keep the key's unwrapKey and decrypt operations, so that the broker's administrator \
                can unwrap data keys with it inside the broker (keys decrypt, POST .../unwrapkey). Without it the \
                release policy is the only way to the data keys the key protects.
                """
        )
        var allowAdminUnwrap = false

        func validate() throws {
            if let kty, !["oct", "rsa", "ec"].contains(kty.lowercased()) {
                throw ValidationError("--kty is oct, RSA or EC")
            }
            if exportable != (policy != nil) {
                throw ValidationError("--exportable and --policy go together: a key is exportable only with a policy")
            }
            if immutable, policy == nil { throw ValidationError("--immutable needs --policy") }
            if allowAdminUnwrap, policy == nil {
                throw ValidationError("--allow-admin-unwrap needs --policy (a key without one keeps every operation)")
            }
        }

        func run() async throws {
            let material = try KeyImportMaterial.file(
                try Files.read(keyFile, what: "key file", limit: 64 << 10),
                kty: kty
            )
            let releasePolicy = try policy.map {
                KeyReleasePolicy(
                    data: Base64URL.encode(try Files.read($0, what: "release policy", limit: 64 << 10)),
                    immutable: immutable
                )
            }
            let directory = options.brokerDataDir ?? EnclaveCommand.Serve.KeyBroker.defaultDataDirectory()
            let attestation = try trust.attestationClient()
            let expectation = try await trust.expectation(brokerDataDirectory: directory, attestation: attestation)
            let bundle = try await options.client().importKey(
                name: name,
                material: material,
                releasePolicy: releasePolicy,
                attestation: attestation,
                expecting: expectation,
                allowAdminUnwrap: allowAdminUnwrap
            )
            try printJSON(bundle)
        }
    }
}

extension EnclaveCommand.Keys {
    struct VerifyBroker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-broker",
            abstract:
                "Check the broker enclave's evidence and print what it binds; optionally save its signing certificate.",
            discussion: """
                The same check `keys import` makes before it sends a key: the broker's evidence attested by the \
                attestation service, the token's signer, product and security version as expected, the import key \
                and the release signing key bound by the evidence, and the attestation authorities and signing \
                certificates the broker enclave trusts exactly as expected (--broker-authority; default: the \
                attestation service). --signing-cert-out saves the signing certificate \
                (PEM) to pin in enclaves that get keys released (SecretProcessingHost --broker-signing-cert).
                """
        )
        @OptionGroup var options: BrokerOptions
        @OptionGroup var trust: BrokerTrustOptions
        @Option(help: "Write the broker's release signing certificate (PEM) here.") var signingCertOut: String?

        func run() async throws {
            let directory = options.brokerDataDir ?? EnclaveCommand.Serve.KeyBroker.defaultDataDirectory()
            let attestation = try trust.attestationClient()
            let verified = try await options.client().verifiedBroker(
                attestation: attestation,
                expecting: try await trust.expectation(brokerDataDirectory: directory, attestation: attestation)
            )
            if let signingCertOut {
                let base64 = Data(verified.signingCertificate).base64EncodedString(options: [.lineLength64Characters])
                let pem = "-----BEGIN CERTIFICATE-----\n" + base64 + "\n-----END CERTIFICATE-----\n"
                try Files.write(Array(pem.utf8), to: signingCertOut, mode: 0o644)
            }
            let claims = verified.claims
            print("broker enclave verified by \(trust.attestation)")
            print("signer:          \(claims["x-ms-sgx-mrsigner"]?.description ?? "?")")
            print("productID:       \(claims["x-ms-sgx-product-id"]?.description ?? "?")")
            print("securityVersion: \(claims["x-ms-sgx-svn"]?.description ?? "?")")
            print("import key:      \(verified.importKey.kid ?? "(no kid)")")
            for authority in verified.authorities {
                print("authority:       \(authority.url) (\(authority.thumbprints.sorted().joined(separator: ", ")))")
            }
            print(
                "signing key:     \(Hex.encode(Array(SHA256.hash(data: verified.signingKey))).prefix(16))… (SHA-256 of x‖y)"
            )
        }
    }
}
