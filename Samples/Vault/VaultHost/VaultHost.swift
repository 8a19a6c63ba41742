import ArgumentParser
import EnclaveCore
import EnclaveHost
import Foundation
import VaultInterface

/// Stores secrets sealed by the vault enclave; the host only ever sees sealed blobs.
@main
struct VaultHost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seal secrets with the vault enclave and keep the blobs in a directory.",
        subcommands: [Put.self, Get.self]
    )

    struct Common: ParsableArguments {
        @Option(help: "Path to the signed VaultEnclave image.")
        var enclave: String

        @Option(help: "The signature structure, if not IMAGE.sig beside the image.")
        var signature: String?

        @Option(help: "Directory holding the sealed blobs.")
        var store: String

        @Flag(help: "Allow a debug-signed enclave.")
        var debug = false

        func validateName(_ name: String) throws {
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
            guard !name.isEmpty, name.count <= 128, name.allSatisfy(allowed.contains), !name.hasPrefix(".") else {
                throw ValidationError(
                    "a secret's name is 1-128 letters, digits, '.', '_' or '-', not starting with '.'"
                )
            }
        }

        func path(_ name: String) -> String { store + "/" + name + ".sealed" }

        /// The store directory, private (0700, created if missing; refused if others may write into it), with
        /// the temporaries of writers killed mid-write removed.
        func prepareStore() throws {
            do {
                try SecretFile.prepareDirectory(store, what: "vault store")
            } catch {
                throw ValidationError(error.reason)
            }
            // Ours, and the `.nosync` temporaries Foundation's atomic writes left before this store used ours.
            SecretFile.removeLeftovers(in: store, extraMarkers: [".nosync"])
        }

        func load() async throws -> Enclave {
            var options = Enclave.Options()
            options.debug = debug
            options.signaturePath = signature
            do {
                return try await Enclave.load(path: enclave, options: options)
            } catch let error as EnclaveError {
                throw ValidationError("cannot load \(enclave): \(error.reason)")
            }
        }
    }

    enum Policy: String, ExpressibleByArgument {
        case unique, signer
        var sealPolicy: SealPolicy { self == .unique ? .uniqueID : .signerID }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Seal the secret read from standard input as NAME.")

        @OptionGroup var common: Common

        @Option(help: "unique: only this exact enclave can read it; signer: any later version from the same signer.")
        var policy: Policy = .signer

        @Argument var name: String

        func run() async throws {
            try common.validateName(name)
            try common.prepareStore()
            let secret = FileHandle.standardInput.readDataToEndOfFile()
            guard secret.count <= 16 << 20 else { throw ValidationError("a secret is at most 16 MiB") }
            let enclave = try await common.load()
            let blob: [UInt8]
            do {
                blob = try await enclave.call(
                    VaultSeal.self,
                    SealSecret(secret: [UInt8](secret), policy: policy.sealPolicy, name: name)
                )
            } catch let error as EnclaveError {
                throw ValidationError("sealing failed: \(error.reason)")
            }
            await enclave.terminate()
            do {
                try SecretFile.write(blob, to: common.path(name))  // 0600 from the first byte, fsync, rename
            } catch {
                throw ValidationError(error.reason)
            }
            print("sealed \(name) (\(secret.count) bytes, policy \(policy.rawValue)) in \(common.path(name))")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unseal NAME and print it to standard output.")

        @OptionGroup var common: Common

        @Argument var name: String

        func run() async throws {
            try common.validateName(name)
            guard let blob = FileManager.default.contents(atPath: common.path(name)) else {
                throw ValidationError("no secret named \(name) in \(common.store)")
            }
            let enclave = try await common.load()
            let secret: [UInt8]
            do {
                secret = try await enclave.call(VaultUnseal.self, UnsealSecret(blob: [UInt8](blob), name: name))
            } catch let error as EnclaveError {
                throw ValidationError("cannot unseal \(name): \(error.reason)")
            }
            await enclave.terminate()
            FileHandle.standardOutput.write(Data(secret))
        }
    }
}
