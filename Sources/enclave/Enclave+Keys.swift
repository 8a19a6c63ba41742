import ArgumentParser
import AttestationAPI
import AttestationClient
import Crypto
import EnclaveCore
import Foundation
import KeyEnvelope

extension EnclaveCommand {
    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage keys in the key broker and encrypt files under them.",
            subcommands: [
                Create.self, Import.self, List.self, Show.self, Rotate.self, Delete.self, Release.self,
                Encrypt.self, Decrypt.self, Audit.self, Refusals.self, VerifyBroker.self,
            ]
        )
    }
}

/// Where the broker is and how to trust it.
struct BrokerOptions: ParsableArguments {
    @Option(help: "The key broker's URL.")
    var broker = "https://127.0.0.1:8443"

    @Option(help: "The broker's TLS certificate (PEM; default: the one in its data directory).")
    var brokerCert: String?

    @Option(help: "A SHA-256 pin of the broker's TLS certificate instead of --broker-cert.")
    var brokerPin: String?

    @Option(help: "The administrator token file (default: the one the broker wrote in its data directory).")
    var adminTokenFile: String?

    @Option(help: "The broker's data directory (default: $XDG_DATA_HOME/enclavekit/keybroker).")
    var brokerDataDir: String?

    func client() throws -> KeyBrokerClient {
        guard let url = URL(string: broker), url.scheme == "https" || url.scheme == "http" else {
            throw ValidationError("--broker is an https:// URL, not \(broker)")
        }
        let directory = brokerDataDir ?? EnclaveCommand.Serve.KeyBroker.defaultDataDirectory()
        let tokenPath = adminTokenFile ?? directory + "/admin-token"
        let token = try? Files.readText(tokenPath, what: "administrator token").trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        if url.scheme == "http" {
            // Plain HTTP only to a broker on this machine (`serve keybroker --insecure-http`, for development).
            guard ["127.0.0.1", "localhost", "::1", "[::1]"].contains(url.host ?? "") else {
                throw ValidationError("--broker over http:// only to a loopback broker; use https://")
            }
            return KeyBrokerClient(endpoint: url, trust: .system, adminToken: token)  // follows no redirect
        }
        let trust: ServiceTrust
        do {
            if let brokerPin {
                trust = try .pinned(sha256: brokerPin)
            } else {
                trust = try .certificateFile(brokerCert ?? directory + "/tls/certificate.pem")
            }
        } catch {
            throw ValidationError("cannot trust the broker: \(Files.describe(error))")
        }
        return KeyBrokerClient(endpoint: url, trust: trust, adminToken: token)
    }
}

extension EnclaveCommand.Keys {
    static func printJSON(_ value: some Encodable) throws {
        let encoder = WireJSON.encoder
        encoder.outputFormatting.insert(.prettyPrinted)
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key (or a new version) inside the broker enclave."
        )
        @OptionGroup var options: BrokerOptions
        @Argument(help: "The key's name (0-9, a-z, A-Z, -).") var name: String
        @Option(help: "RSA, EC or oct (AES-256).") var kty = "RSA"
        @Option(help: "RSA: 2048 or 3072.") var size: Int?
        @Option(help: "EC: P-256 or P-384.") var curve: String?
        @Option(
            help:
                "A release policy (JSON file, Key Vault's grammar): the key becomes exportable to enclaves that satisfy it."
        )
        var policy: String?
        @Flag(help: "Make the release policy immutable.") var immutable = false

        func run() async throws {
            var parameters = KeyCreateParameters(kty: kty, keySize: size, crv: curve)
            if let policy {
                let bytes = try Files.read(policy, what: "release policy", limit: 64 << 10)
                parameters.attributes = KeyAttributes(exportable: true)
                parameters.releasePolicy = KeyReleasePolicy(data: Base64URL.encode(bytes), immutable: immutable)
            }
            try printJSON(try await options.client().createKey(name: name, parameters))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys.")
        @OptionGroup var options: BrokerOptions
        func run() async throws { try printJSON(try await options.client().listKeys()) }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a key's public part, attributes and policy.")
        @OptionGroup var options: BrokerOptions
        @Argument var name: String
        @Option(help: "A version (default: the newest).") var version: String?
        @Flag(help: "List the versions instead.") var versions = false
        @Flag(
            help: """
                Print only the RFC 7638 thumbprint of the key's public part (RSA, EC): hand it to those who encrypt \
                to your key (keys encrypt --expect-thumbprint).
                """
        )
        var thumbprint = false
        func validate() throws {
            if thumbprint, versions { throw ValidationError("--thumbprint shows one version: leave out --versions") }
        }
        func run() async throws {
            let client = try options.client()
            if thumbprint {
                let bundle = try await client.key(name: name, version: version)
                guard let value = KeyBrokerClient.jwkThumbprint(bundle.key) else {
                    throw RuntimeFailure(message: "\(name) is an \(bundle.key.kty) key: it has no public part")
                }
                print(value)
            } else if versions {
                try printJSON(try await client.versions(name: name))
            } else {
                try printJSON(try await client.key(name: name, version: version))
            }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the broker's audit log (management calls and release decisions), newest first."
        )
        @OptionGroup var options: BrokerOptions
        @Option(help: "How many records (1-1000).") var top = 100
        func validate() throws {
            guard (1...1000).contains(top) else { throw ValidationError("--top is 1 to 1000") }
        }
        func run() async throws { try printJSON(try await options.client().audit(top: top)) }
    }

    struct Refusals: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the broker's counts of anonymous release refusals (per minute, key and code), newest first.",
            discussion: """
                A release refused before the broker enclave verified its token (an unknown key, a disabled key, a \
                token that does not verify) is counted, not audited one by one. One row a minute, key and code: \
                the minute (UTC), the count, the key ("-": a bad or unknown name) and the code.
                """
        )
        @OptionGroup var options: BrokerOptions
        @Option(help: "How many rows (1-10000).") var top = 100
        @Flag(help: "Print the broker's JSON answer instead.") var json = false
        func validate() throws {
            guard (1...10_000).contains(top) else { throw ValidationError("--top is 1 to 10000") }
        }
        func run() async throws {
            let log = try await options.client().refusals(top: top)
            if json {
                try printJSON(log)
                return
            }
            guard !log.value.isEmpty else {
                print("no refused releases counted")
                return
            }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd HH:mm"
            let width = max(5, log.value.map { String($0.count).count }.max() ?? 0)
            print("minute (UTC)      " + "count".leftPadded(width) + "  key  code")
            for row in log.value {
                let minute = formatter.string(from: Date(timeIntervalSince1970: Double(row.minute) * 60))
                print(
                    minute + "  " + String(row.count).leftPadded(width) + "  " + Self.printable(row.key) + "  "
                        + Self.printable(row.code)
                )
            }
        }

        /// `text` with control characters shown as `?` (a key name or code is the broker's, not ours to trust).
        static func printable(_ text: String) -> String {
            String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a new version of a key.")
        @OptionGroup var options: BrokerOptions
        @Argument var name: String
        func run() async throws { try printJSON(try await options.client().rotateKey(name: name)) }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a key (recoverable), or purge a deleted one.")
        @OptionGroup var options: BrokerOptions
        @Argument var name: String
        @Flag(help: "Purge the deleted key for good.") var purge = false
        @Flag(help: "Recover the deleted key.") var recover = false
        func run() async throws {
            let client = try options.client()
            if purge {
                try await client.purgeKey(name: name)
                print("purged \(name)")
            } else if recover {
                try printJSON(try await client.recoverKey(name: name))
            } else {
                try printJSON(try await client.deleteKey(name: name))
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask for a key's release with an attestation token; prints the broker's JWS."
        )
        @OptionGroup var options: BrokerOptions
        @Argument var name: String
        @Option(help: "The version (default: the newest).") var version: String?
        @Option(help: "A file holding the attestation token (JWT).") var token: String
        @Option(help: "A nonce the token must carry.") var nonce: String?
        func run() async throws {
            let client = try options.client()
            let jwt = try Files.readText(token, what: "attestation token").trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            print(
                try await client.release(name: name, version: version, KeyReleaseParameters(target: jwt, nonce: nonce))
            )
        }
    }

    struct Encrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a file under a broker key (a fresh AES-256 data key, wrapped by the broker key).",
            discussion: """
                RSA keys wrap the data key here with the key's public part (RSA-OAEP-256), EC keys (P-256, P-384) \
                too (a JWE ECDH-ES+A256KW with an ephemeral key); AES (oct) keys wrap it inside the broker (wrapkey). \
                `keys decrypt` (administrator) has the broker enclave unwrap it; an enclave the key is released to \
                unwraps it itself.
                """
        )
        @OptionGroup var options: BrokerOptions
        @Option(help: "The broker key's name.") var key: String
        @Option(
            help: """
                The version (default: the newest, refused when the name's versions differ in origin: an owner's \
                import and the administrator's versions).
                """
        )
        var version: String?
        @Option(
            help: """
                The origin the key must have: owner (imported by its owner under a release policy) or \
                administrator.
                """
        )
        var expectOrigin: String?
        @Option(
            help: """
                The RFC 7638 thumbprint the key's public part must have (its owner's `keys show --thumbprint`): \
                checked on the key this command encrypts to, whoever answers for the broker.
                """
        )
        var expectThumbprint: String?
        @Argument var input: String
        @Argument var output: String

        func validate() throws {
            if let expectOrigin, KeyOrigin(rawValue: expectOrigin) == nil {
                throw ValidationError("--expect-origin is owner or administrator")
            }
        }

        func run() async throws {
            let client = try options.client()
            let bundle = try await client.encryptionKey(
                name: key,
                version: version,
                expecting: KeyBrokerKeyExpectation(
                    origin: expectOrigin.flatMap { KeyOrigin(rawValue: $0) },
                    thumbprint: expectThumbprint
                )
            )
            guard let kid = bundle.key.kid, let chosen = kid.split(separator: "/").last.map(String.init) else {
                throw RuntimeFailure(message: "the broker's answer has no key identifier")
            }
            let plaintext = try Files.read(input, what: "input")
            let dataKey = Envelope.newDataKey()
            let wrapped: [UInt8]
            let algorithm: EnvelopeHeader.Algorithm
            switch bundle.key.kty {
            case "RSA", "RSA-HSM":
                guard let n = bundle.key.n.flatMap({ Base64URL.decode($0) }),
                    let e = bundle.key.e.flatMap({ Base64URL.decode($0) })
                else { throw RuntimeFailure(message: "the broker key \(key) has no RSA public part") }
                wrapped = try Envelope.wrapRSAOAEP256(dataKey, n: n, e: e)
                algorithm = .rsaOAEP256
            case "oct", "oct-HSM":
                wrapped = try await client.wrapKey(
                    name: key,
                    version: chosen,
                    algorithm: "A256KW",
                    key: dataKey.withUnsafeBytes { Array($0) }
                )
                algorithm = .a256KW
            case "EC", "EC-HSM":
                guard let crv = bundle.key.crv, let x = bundle.key.x.flatMap({ Base64URL.decode($0) }),
                    let y = bundle.key.y.flatMap({ Base64URL.decode($0) })
                else { throw RuntimeFailure(message: "the broker key \(key) has no EC public part") }
                wrapped = try Envelope.wrapECDHES(dataKey, crv: crv, x: x, y: y)
                algorithm = .ecdhESA256KW
            default:
                throw ValidationError("\(key) is an \(bundle.key.kty) key: encrypt under an RSA, EC or oct (AES) key")
            }
            let header = EnvelopeHeader(
                algorithm: algorithm,
                keyID: kid,
                wrappedKey: wrapped,
                fileID: Envelope.newFileID(),
                chunkSize: Envelope.defaultChunkSize
            )
            try Files.write(try Envelope.encrypt(plaintext, header: header, dataKey: dataKey), to: output, mode: 0o600)
            print("encrypted \(plaintext.count) bytes under \(kid) (\(algorithm.name)) into \(output)")
        }
    }

    struct Decrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt a file made by `enclave keys encrypt`: the broker unwraps the data key (administrator)."
        )
        @OptionGroup var options: BrokerOptions
        @Option(help: "The broker key's name (checked against the file).") var key: String
        @Argument var input: String
        @Argument var output: String

        func run() async throws {
            let client = try options.client()
            let file = try Files.read(input, what: "input")
            let header = try Envelope.header(of: file)
            guard let (name, version) = header.keyNameAndVersion, name == key else {
                throw ValidationError("\(input) is encrypted under \(header.keyID), not key \(key)")
            }
            let dataKey = try await client.unwrapKey(
                name: name,
                version: version,
                algorithm: header.algorithm.name,
                wrapped: header.wrappedKey
            )
            guard dataKey.count == 32 else {
                throw RuntimeFailure(message: "the broker unwrapped a key that is not 32 bytes")
            }
            let plaintext = try Envelope.decrypt(file, dataKey: SymmetricKey(data: dataKey))
            try Files.write(plaintext, to: output, mode: 0o600)
            print("decrypted \(plaintext.count) bytes into \(output)")
        }
    }
}
