import ArgumentParser
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation

extension EnclaveCommand {
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate an enclave signing key (ECDSA P-256, PKCS#8 PEM)."
        )

        @Option(help: "Where to write the private key (created with mode 0600).")
        var out: String

        @Option(help: "Also write the public key (PEM) here.")
        var publicOut: String?

        @Flag(help: "Replace an existing key file.")
        var force = false

        func run() throws {
            if FileManager.default.fileExists(atPath: out) && !force {
                throw ValidationError("\(out) already exists; pass --force to replace it")
            }
            let key = P256.Signing.PrivateKey()
            try Files.write(Array(key.pemRepresentation.utf8), to: out, mode: 0o600)
            if let publicOut {
                try Files.write(Array(key.publicKey.pemRepresentation.utf8), to: publicOut)
            }
            let signerID = EnclaveImage.sha256Hex(Array(key.publicKey.derRepresentation))
            print("wrote \(out)\nsignerID: \(signerID)")
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign an enclave image, writing IMAGE.sig.",
            discussion: """
                Sign directly with --key, or offline: --digest-out writes the exact bytes to sign (ECDSA P-256 with \
                SHA-256, e.g. in an HSM); --attach-signature with --public-key then completes IMAGE.sig.

                Give each enclave's code its own productID under a signer: signer and product are the whole \
                identity that sealing (signer policy), release policies, rollback counters and broker joins check. \
                Two enclaves of one signer and product unseal each other's data and pass each other's policies. \
                Every signing prints the product and this reminder (on standard error).
                """
        )

        @Option(help: "The signer's private key (PEM).")
        var key: String?

        @Option(help: "The enclave configuration (JSON).")
        var config: String

        @Option(help: "Write the bytes to sign to this file instead of signing.")
        var digestOut: String?

        @Option(help: "A signature over the --digest-out bytes (DER or raw 64-byte r||s).")
        var attachSignature: String?

        @Option(help: "The signer's public key (PEM) for --attach-signature.")
        var publicKey: String?

        @Option(help: "Where to write the signature structure (default: IMAGE.sig).")
        var out: String?

        @Argument(help: "The enclave executable.")
        var image: String

        func validate() throws {
            let modes = [key != nil, digestOut != nil, attachSignature != nil].filter { $0 }.count
            guard modes == 1 else {
                throw ValidationError("choose exactly one of --key, --digest-out or --attach-signature")
            }
            if attachSignature != nil && publicKey == nil {
                throw ValidationError("--attach-signature needs --public-key")
            }
        }

        func run() throws {
            let configuration: EnclaveConfig
            do {
                configuration = try EnclaveConfig(jsonBytes: try Files.read(config, what: "configuration"))
            } catch {
                throw ValidationError("\(config): \(Files.describe(error))")
            }
            let measured: EnclaveImage
            do {
                measured = try EnclaveImage(path: image)
            } catch {
                throw ValidationError(Files.describe(error))
            }
            let body = EnclaveSignature.Body(manifest: measured.manifest(config: configuration), config: configuration)
            let destination = out ?? image + ".sig"

            if let digestOut {
                try Files.write(body.bytes, to: digestOut)
                print("wrote the \(body.bytes.count) bytes to sign to \(digestOut)")
                print("sha256: \(EnclaveImage.sha256Hex(body.bytes))")
                print("uniqueID: \(body.uniqueID.hex)")
                print("productID: \(configuration.productID)")
                Self.remindOfProduct(configuration.productID)
                return
            }
            let signature: EnclaveSignature
            if let key {
                let pem = try Files.readText(key, what: "key")
                guard let privateKey = try? P256.Signing.PrivateKey(pemRepresentation: pem) else {
                    throw ValidationError("\(key) is not a P-256 private key in PEM")
                }
                signature = try EnclaveSignature(signing: body, with: privateKey)
            } else {
                let pem = try Files.readText(publicKey!, what: "public key")
                guard let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
                    throw ValidationError("\(publicKey!) is not a P-256 public key in PEM")
                }
                do {
                    signature = try EnclaveSignature(
                        body: body,
                        publicKey: key,
                        signature: try Files.read(attachSignature!, what: "signature")
                    )
                } catch {
                    throw ValidationError(Files.describe(error))
                }
            }
            try Files.write(signature.bytes, to: destination)
            print("wrote \(destination)")
            print("uniqueID: \(signature.identity.uniqueID.hex)")
            print("signerID: \(signature.identity.signerID.hex)")
            print("productID: \(signature.identity.productID)")
            Self.remindOfProduct(signature.identity.productID)
        }

        /// Signer and product are the whole identity; nothing here can tell whether this signer already gave the
        /// product to other code, so every signing says so (on standard error, beside the product on standard output).
        static func remindOfProduct(_ productID: UInt16) {
            FileHandle.standardError.write(
                Data(
                    ("note: product \(productID): sign no other enclave code with this key and product. Enclaves of "
                        + "one signer and product are one identity: they unseal each other's data (signer policy) "
                        + "and pass the same release policies, rollback counters and broker joins.\n").utf8
                )
            )
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a signed enclave's identity.")

        @Flag(help: "Print JSON.")
        var json = false

        @Option(help: "The signature structure (default: IMAGE.sig).")
        var signature: String?

        @Argument(help: "The enclave executable.")
        var image: String

        func run() throws {
            let path = signature ?? image + ".sig"
            let parsed: EnclaveSignature
            do {
                parsed = try EnclaveSignature(bytes: try Files.read(path, what: "signature structure"))
            } catch {
                throw ValidationError("\(path): \(Files.describe(error))")
            }
            let identity = parsed.identity
            let config = parsed.body.config
            if json {
                let object: [String: Any] = [
                    "uniqueID": identity.uniqueID.hex, "signerID": identity.signerID.hex,
                    "productID": Int(identity.productID), "securityVersion": Int(identity.securityVersion),
                    "debug": identity.isDebug, "maxThreads": Int(config.maxThreads),
                    "maxMemory": Int(config.maxMemory),
                    "trustedFiles": parsed.body.manifest.trustedFiles.map {
                        ["path": $0.path, "sha256": $0.digest.hex]
                    },
                ]
                try Files.printJSON(object)
            } else {
                print("uniqueID:        \(identity.uniqueID.hex)")
                print("signerID:        \(identity.signerID.hex)")
                print("productID:       \(identity.productID)")
                print("securityVersion: \(identity.securityVersion)")
                print("debug:           \(identity.isDebug)")
                print("maxThreads:      \(config.maxThreads)")
                print("maxMemory:       \(config.maxMemory)")
                print("trustedFiles:    \(parsed.body.manifest.trustedFiles.count)")
            }
        }
    }
}
