import ArgumentParser
import AttestationAPI
import AttestationClient
import CleanRoom
import CleanRoomHost
import Crypto
import EnclaveCore
import Foundation

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom encrypt`: encrypt a data owner's CSV file for the clean room, client-side.
    struct Encrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a CSV data set for a contract's clean room (streaming, chunked AES-256-GCM).",
            discussion: """
                With --key NAME (the usual way) a fresh data key is made in memory, imported into the key broker \
                (--broker) as NAME, wrapped to the broker's import key after its evidence was checked with the \
                attestation service (--attestation), exportable only to the contract's clean room: the contract's \
                enclave signer and product, at least its minimum security version, not debug, and runtime data \
                naming this contract's ID and, as its rollback counter's key (x-ms-runtime.counterKey), the broker's own \
                signing key (so no clean room whose privacy budget a host could roll back gets it). The key never \
                touches disk in the clear. Offline, --key-file gives the \
                data key as 32 raw bytes (`-` reads standard input). The file is bound to the contract ID and the \
                data set name in its authenticated header; the clean room refuses it under any other contract or \
                data set. With --sign-upload the owner's signature for the host (PUT /datasets/NAME, header \
                X-Owner-Signature) is written to OUTPUT.sig and the ciphertext's SHA-256 it covers (header \
                X-Upload-SHA256, checked with the signature before the host reads the body) to OUTPUT.sha256. Progress goes to standard error for inputs over 64 MiB.
                """
        )

        @Option(
            help: """
                Import a fresh data key into the key broker under this name (released only to the clean room). A \
                new name for each encryption: the name of a key its owner imported holds that one key \
                (KeyOwnedByImporter).
                """
        )
        var key: String?

        @Option(help: "Offline: a file holding the data key, exactly 32 raw bytes (`-` for standard input).")
        var keyFile: String?

        @OptionGroup var brokerOptions: BrokerOptions

        @OptionGroup var trust: BrokerTrustOptions

        @Option(help: "The data owner's signing key (PEM): write the upload signature to OUTPUT.sig.")
        var signUpload: String?

        @Option(
            help: ArgumentHelp(
                "With --sign-upload: the upload's version, above every earlier upload of the data set (the clean "
                    + "room refuses a lower one than it loaded: staleUpload). Default: the time in milliseconds."
            )
        )
        var uploadVersion: UInt64?

        @Option(help: "The canonical contract the data is for.")
        var contract: String

        @Option(help: "The data set (table) of the contract this file fills.")
        var dataSet: String

        @Option(help: "Plaintext bytes per chunk (4096 to 16777216).")
        var chunkSize: UInt32 = DataFileEncryptor.defaultChunkSize

        @Argument(help: "The CSV file.")
        var input: String

        @Argument(help: "Where to write the encrypted file (.ecr).")
        var output: String

        func validate() throws {
            guard (key == nil) != (keyFile == nil) else {
                throw ValidationError("give exactly one of --key (the key broker) and --key-file (offline)")
            }
        }

        func run() async throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            guard let set = contract.dataSet(dataSet) else {
                throw ValidationError("the contract has no data set \"\(dataSet)\"")
            }
            let owner = try signUpload.map { try EnclaveCommand.CleanRoomCLI.signingKey($0) }
            if let owner, contract.party(set.owner)?.signingKey.rawRepresentation != owner.publicKey.rawRepresentation {
                throw ValidationError("--sign-upload is not the key of \(set.owner), the owner of \(dataSet)")
            }
            let dataKey: SymmetricKey
            if let key {
                dataKey = SymmetricKey(size: .bits256)
                let broker = try brokerOptions.client()
                let attestation = try trust.attestationClient()
                let directory = brokerOptions.brokerDataDir ?? EnclaveCommand.Serve.KeyBroker.defaultDataDirectory()
                let expectation = try await trust.expectation(brokerDataDirectory: directory, attestation: attestation)
                let bundle = try await Self.refusingService {
                    // The broker's signing key as its evidence binds it: the clean room must name it as its rollback
                    // counter's key (x-ms-runtime.counterKey), or a host answering the counter itself could roll the
                    // privacy budget back.
                    let verified = try await broker.verifiedBroker(attestation: attestation, expecting: expectation)
                    let policy = CleanRoomKeyRelease.releasePolicy(
                        contract: contract,
                        issuer: try await attestation.issuer(),
                        counterKey: verified.signingKey
                    )
                    return try await broker.importKey(
                        name: key,
                        material: try dataKey.withUnsafeBytes { try KeyImportMaterial.aes(Array($0)) },
                        releasePolicy: KeyReleasePolicy(data: Base64URL.encode(policy), immutable: true),
                        tags: ["purpose": "cleanroom", "contract": String(contract.id.hex.prefix(16))],
                        attestation: attestation,
                        expecting: expectation
                    )
                }
                let version = bundle.key.kid.map { String($0.split(separator: "/").last ?? "") } ?? "?"
                print(
                    "imported data key \(key) version \(version) into the key broker (its evidence checked: signer "
                        + "\(expectation.signerID.hex.prefix(16))…, not debug), released only to clean room signer "
                        + "\(contract.enclave.signerID.hex.prefix(16))… under contract \(contract.id.hex.prefix(16))…"
                )
            } else {
                dataKey = try Self.readKey(keyFile ?? "-")
            }
            try Self.encryptFile(
                input: input,
                output: output,
                dataKey: dataKey,
                contractID: contract.id,
                dataSet: dataSet,
                chunkSize: chunkSize
            )
            if let owner {
                let digest = try Self.sha256(ofFile: output)
                let version = uploadVersion ?? UInt64(Date().timeIntervalSince1970 * 1000)
                let signature = try EnclaveCommand.CleanRoomCLI.refusing {
                    try DataSetUploadSigning.sign(
                        contractID: contract.id,
                        dataSet: dataSet,
                        sha256: digest,
                        version: version,
                        key: owner
                    )
                }
                try Files.write(Array((signature + "\n").utf8), to: output + ".sig")
                // What the upload declares (X-Upload-SHA256): the host checks the signature over it first.
                try Files.write(Array((digest + "\n").utf8), to: output + ".sha256")
                print(
                    "\(output).sig: \(set.owner)'s upload signature, version \(version) (ciphertext SHA-256 "
                        + "\(digest.prefix(16))…, in \(output).sha256)"
                )
            }
        }

        /// Run a step against the broker or the attestation service; their refusals print `Error: code: message`.
        static func refusingService<T>(_ body: () async throws -> T) async throws -> T {
            do {
                return try await body()
            } catch let failure as AttestationClient.Failure {
                FileHandle.standardError.write(Data("Error: \(failure.code): \(failure.message)\n".utf8))
                throw ExitCode(1)
            } catch let failure as RuntimeFailure {
                throw failure
            } catch let failure as TokenVerifier.Failure {
                throw RuntimeFailure(message: "the attestation service's token about the broker: \(failure.reason)")
            }
        }

        /// SHA-256 (hex) of a file, read in pieces.
        static func sha256(ofFile path: String) throws -> String {
            guard let reader = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
            defer { try? reader.close() }
            var hasher = SHA256()
            while let piece = try reader.read(upToCount: 4 << 20), !piece.isEmpty { hasher.update(data: piece) }
            return hasher.finalize().map { String(format: "%02x", $0) }.joined()
        }

        /// The data key from a file of exactly 32 raw bytes (or standard input for `-`).
        static func readKey(_ path: String) throws -> SymmetricKey {
            let bytes: [UInt8]
            if path == "-" {
                bytes = [UInt8](FileHandle.standardInput.readData(ofLength: 33))
            } else {
                bytes = try Files.read(path, what: "key file", limit: 33)
            }
            guard bytes.count == 32 else {
                throw ValidationError("the data key must be exactly 32 raw bytes (got \(bytes.count))")
            }
            return SymmetricKey(data: bytes)
        }

        /// Encrypt `input` into `output` (written to a temporary name, renamed when complete). Every way of
        /// obtaining the data key (a key file now, the key broker later) ends here.
        static func encryptFile(
            input: String,
            output: String,
            dataKey: SymmetricKey,
            contractID: Digest32,
            dataSet: String,
            chunkSize: UInt32
        ) throws {
            guard let reader = FileHandle(forReadingAtPath: input) else {
                throw ValidationError("cannot read \(input)")
            }
            defer { try? reader.close() }
            let total = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
            let partial = output + ".partial"
            guard FileManager.default.createFile(atPath: partial, contents: nil) else {
                throw ValidationError("cannot create \(partial)")
            }
            var completed = false
            defer { if !completed { try? FileManager.default.removeItem(atPath: partial) } }
            guard let writer = FileHandle(forWritingAtPath: partial) else {
                throw ValidationError("cannot write \(partial)")
            }
            var encryptor = try EnclaveCommand.CleanRoomCLI.refusing {
                try DataFileEncryptor(dataKey: dataKey, contractID: contractID, dataSet: dataSet, chunkSize: chunkSize)
            }
            let showProgress = total > 64 << 20
            var done = 0
            var lastPercent = -1
            while true {
                let piece = try reader.read(upToCount: 4 << 20) ?? Data()
                if piece.isEmpty { break }
                let sealed = try EnclaveCommand.CleanRoomCLI.refusing { try encryptor.write([UInt8](piece)) }
                try writer.write(contentsOf: sealed)
                done += piece.count
                if showProgress {
                    let percent = done * 100 / max(total, 1)
                    if percent / 5 != lastPercent / 5 {
                        lastPercent = percent
                        FileHandle.standardError.write(
                            Data("encrypting \(input): \(percent)% (\(done >> 20) MiB)\n".utf8)
                        )
                    }
                }
            }
            try writer.write(contentsOf: try EnclaveCommand.CleanRoomCLI.refusing { try encryptor.finish() })
            try writer.synchronize()
            try writer.close()
            if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
            try FileManager.default.moveItem(atPath: partial, toPath: output)
            completed = true
            print("\(output): data set \(dataSet) of contract \(contractID.hex), \(done) bytes encrypted")
        }
    }
}
