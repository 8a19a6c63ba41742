import ArgumentParser
import CleanRoom
import Crypto
import EnclaveCore
import Foundation

extension EnclaveCommand.CleanRoomCLI {
    /// `enclave cleanroom result`: results for recipients.
    struct Result: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open an encrypted clean room result as one of its recipients.",
            subcommands: [Open.self]
        )

        struct Open: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Decrypt a result document with a recipient's X25519 key (from `cleanroom keygen --recipient`)."
            )

            @Argument(help: "The result document.")
            var result: String

            @Option(help: "The recipient party's name.")
            var party: String

            @Option(help: "The recipient's private key file (base64url raw X25519 key).")
            var key: String

            @Option(help: "Where to write the plaintext (default: standard output).")
            var out: String?

            func run() throws {
                let bytes = try Files.read(result, what: "result", limit: CanonicalJSON.maxBytes)
                let text = try Files.readText(key, what: "recipient key").trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
                guard let raw = Base64URL.decode(text),
                    let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
                else { throw ValidationError("\(key) is not a base64url X25519 private key") }
                let plaintext = try EnclaveCommand.CleanRoomCLI.refusing {
                    try ResultEnvelope(canonicalBytes: bytes).open(as: party, key: privateKey)
                }
                if let out {
                    try Files.write(plaintext, to: out, mode: 0o600)
                } else {
                    FileHandle.standardOutput.write(Data(plaintext))
                }
            }
        }
    }

    /// `enclave cleanroom receipt`: receipts, offline.
    struct ReceiptCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "receipt",
            abstract: "Verify clean room receipts offline.",
            subcommands: [Verify.self]
        )

        struct Verify: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Verify a chain of receipts (oldest first): signatures, links, sequence, one contract.",
                discussion: """
                    The receipt key is given as a PEM public key for now; checking it against the evidence in each \
                    receipt comes with the clean room enclave. --after names the receipt the first one must follow \
                    (default: the first must start the chain).
                    """
            )

            @Argument(help: "Receipt documents, oldest first.")
            var receipts: [String]

            @Option(help: "The receipt key (PEM public key, P-256).")
            var receiptKey: String

            @Option(help: "The receipt the first one must follow.")
            var after: String?

            func run() throws {
                guard
                    let key = try? P256.Signing.PublicKey(
                        pemRepresentation: Files.readText(receiptKey, what: "receipt key")
                    )
                else { throw ValidationError("\(receiptKey) is not a P-256 public key (PEM)") }
                let documents = try receipts.map { try Files.read($0, what: "receipt", limit: 1 << 20) }
                let previous = try after.map { try Files.read($0, what: "receipt", limit: 1 << 20) }
                try EnclaveCommand.CleanRoomCLI.refusing {
                    let chain = try documents.map { try Receipt(canonicalBytes: $0) }
                    try ReceiptChain.verify(chain, after: try previous.map { try Receipt(canonicalBytes: $0) }) { _ in
                        key
                    }
                    for receipt in chain {
                        print(
                            "receipt \(receipt.sequence): contract \(receipt.contractID.hex), query \(receipt.queryID), "
                                + "result \(receipt.result.hex), \(receipt.suppressedGroups) group(s) suppressed, "
                                + "ε \(Double(receipt.epsilonSpentMilli) / 1000): verified"
                        )
                    }
                }
            }
        }
    }
}
