import ArgumentParser
import Attestation
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

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Verify a chain of receipts (oldest first): evidence, signatures, links, sequence, one contract.",
                discussion: """
                    Each receipt carries the clean room enclave's evidence. It is verified as `enclave verify` does \
                    (same roots, collateral and policy flags); its report data must bind the runtime data, which must \
                    name the receipt's contract and hold the receipt key (`receiptKey`, a key of its own: a receipt \
                    signed by the key data keys are wrapped to, or by any other, is refused). With --contract, the \
                    enclave must also be the one the contract names (signer, product, minimum security version). \
                    --after names the receipt the first one must follow (default: the first must start the chain).
                    """
            )

            @Argument(help: "Receipt documents, oldest first.")
            var receipts: [String]

            @Option(help: "The contract (canonical JSON): the evidence must be of the enclave it names.")
            var contract: String?

            @Option(help: "The receipt the first one must follow.")
            var after: String?

            @Option(help: "Intel collateral: a directory of PCS/PCCS files, or a JSON bundle in the dcap-qvl layout.")
            var collateral: String?

            @Option(help: "An additional Intel trust anchor (PEM); may repeat.")
            var trustAnchor: [String] = []

            @Flag(help: "Accept evidence from a simulated platform.")
            var allowSimulated = false

            @Flag(help: "SGX without --collateral: verify only the signatures and the PCK chain.")
            var chainOnly = false

            func run() async throws {
                let documents = try receipts.map { try Files.read($0, what: "receipt", limit: 1 << 20) }
                let previous = try after.map { try Files.read($0, what: "receipt", limit: 1 << 20) }
                let required = try contract.map { try EnclaveCommand.CleanRoomCLI.readContract($0) }
                let chain = try EnclaveCommand.CleanRoomCLI.refusing {
                    try documents.map { try Receipt(canonicalBytes: $0) }
                }
                // Each receipt's evidence, verified once per distinct evidence document.
                var options = ["receipt-evidence"]
                if let collateral { options += ["--collateral", collateral] }
                for anchor in trustAnchor { options += ["--trust-anchor", anchor] }
                if allowSimulated { options.append("--allow-simulated") }
                if chainOnly { options.append("--chain-only") }
                let verify = try EnclaveCommand.Verify.parse(options)
                var keys: [[UInt8]: P256.Signing.PublicKey] = [:]
                for receipt in chain where keys[receipt.evidence] == nil {
                    let bound = try EnclaveCommand.CleanRoomCLI.refusing { try receipt.boundEvidence() }
                    let evidence = try Evidence(bound.evidence)
                    let verifier = EvidenceVerifier(
                        anchors: try verify.anchors(),
                        collateral: try verify.collateralSource(for: evidence),
                        policy: verify.policy
                    )
                    let claims: Claims
                    do {
                        claims = try await verifier.verify(evidence, at: Date())
                    } catch {
                        FileHandle.standardError.write(
                            Data(
                                ("Error: badReceipt: receipt \(receipt.sequence): its evidence does not verify: "
                                    + "\(error.code): \(error.reason)\n").utf8
                            )
                        )
                        throw ExitCode(1)
                    }
                    if let required {
                        guard let sgx = claims.sgx, sgx.mrSigner == required.enclave.signerID,
                            sgx.isvProductID == required.enclave.productID,
                            sgx.isvSVN >= required.enclave.minSecurityVersion, !claims.debug
                        else {
                            throw ValidationError(
                                "badReceipt: receipt \(receipt.sequence): the evidence is not of the enclave the "
                                    + "contract names"
                            )
                        }
                    }
                    keys[receipt.evidence] = try EnclaveCommand.CleanRoomCLI.refusing {
                        try receipt.attestedKey(reportData: claims.reportData, runtimeData: bound.runtimeData)
                    }
                }
                try EnclaveCommand.CleanRoomCLI.refusing {
                    try ReceiptChain.verify(chain, after: try previous.map { try Receipt(canonicalBytes: $0) }) {
                        receipt throws(CleanRoomError) in
                        guard let key = keys[receipt.evidence] else {
                            throw CleanRoomError(.badReceipt, "receipt \(receipt.sequence): no verified evidence")
                        }
                        return key
                    }
                    if let required {
                        guard chain.allSatisfy({ $0.contractID == required.id }) else {
                            throw CleanRoomError(.badReceipt, "a receipt is of another contract than --contract")
                        }
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
