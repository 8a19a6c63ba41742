import ArgumentParser
import CleanRoom
import Crypto
import EnclaveCore
import Foundation

extension EnclaveCommand {
    /// `enclave cleanroom`: contracts, keys and encrypted data sets of the data clean room.
    struct CleanRoomCLI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cleanroom",
            abstract: "The data clean room: contracts, party keys, encrypted data sets.",
            discussion: """
                A refusal prints `Error: <check>: <reason>` and exits 1 (a contract, signature, halt or data file \
                that does not verify); usage errors exit 64.
                """,
            subcommands: [
                Contract.self, Keygen.self, Encrypt.self, Query.self, Result.self, ReceiptCommand.self, Serve.self,
            ]
        )

        /// Run `body`; a clean room refusal prints its check and reason and exits 1.
        static func refusing<T>(_ body: () throws -> T) throws -> T {
            do {
                return try body()
            } catch let error as CleanRoomError {
                FileHandle.standardError.write(Data("Error: \(error.code): \(error.reason)\n".utf8))
                throw ExitCode(1)
            }
        }

        static func readContract(_ path: String) throws -> CleanRoom.Contract {
            let bytes = try Files.read(path, what: "contract", limit: CanonicalJSON.maxBytes)
            return try refusing { try CleanRoom.Contract(canonicalBytes: bytes) }
        }

        static func signingKey(_ path: String) throws -> P256.Signing.PrivateKey {
            guard let key = try? P256.Signing.PrivateKey(pemRepresentation: Files.readText(path, what: "key")) else {
                throw ValidationError("\(path) is not a P-256 private key (PEM)")
            }
            return key
        }
    }
}

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom keygen`: a party's signing key, or a result recipient's HPKE key.
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a party's P-256 signing key (PEM), or with --recipient an X25519 result key.",
            discussion: """
                Writes the private key to --out (mode 0600) and prints the public key in the form a contract spec \
                takes: base64url of the uncompressed point (signingKey) or of the raw X25519 key (recipient key). \
                A recipient key file holds the base64url raw private key.
                """
        )

        @Option(help: "Where to write the private key.")
        var out: String

        @Flag(help: "Make an X25519 key for receiving results (HPKE) instead of a signing key.")
        var recipient = false

        func run() throws {
            if recipient {
                let key = Curve25519.KeyAgreement.PrivateKey()
                try Files.write(Array((Base64URL.encode(key.rawRepresentation) + "\n").utf8), to: out, mode: 0o600)
                print(Base64URL.encode(key.publicKey.rawRepresentation))
            } else {
                let key = P256.Signing.PrivateKey()
                try Files.write(Array(key.pemRepresentation.utf8), to: out, mode: 0o600)
                print(Base64URL.encode(key.publicKey.x963Representation))
            }
        }
    }
}
