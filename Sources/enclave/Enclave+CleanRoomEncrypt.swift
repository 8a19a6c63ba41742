import ArgumentParser
import CleanRoom
import Crypto
import EnclaveCore
import Foundation

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom encrypt`: encrypt a data owner's CSV file for the clean room, client-side.
    struct Encrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a CSV data set for a contract's clean room (streaming, chunked AES-256-GCM).",
            discussion: """
                The data key is 32 raw bytes read from --key-file (`-` reads standard input). The file is bound to \
                the contract ID and the data set name in its authenticated header; the clean room refuses it under \
                any other contract or data set. Progress goes to standard error for inputs over 64 MiB.
                """
        )

        @Option(help: "A file holding the data key: exactly 32 raw bytes (`-` for standard input).")
        var keyFile: String

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

        func run() throws {
            let contract = try EnclaveCommand.CleanRoomCLI.readContract(contract)
            guard contract.dataSet(dataSet) != nil else {
                throw ValidationError("the contract has no data set \"\(dataSet)\"")
            }
            let key = try Self.readKey(keyFile)
            try Self.encryptFile(
                input: input,
                output: output,
                dataKey: key,
                contractID: contract.id,
                dataSet: dataSet,
                chunkSize: chunkSize
            )
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
