import ArgumentParser
import Attestation
import CleanRoom
import Crypto
import EnclaveCore
import Foundation
import X509

extension EnclaveCommand.CleanRoomCLI {
    /// How the clean room's evidence in a receipt or a halt acknowledgement is verified: as `enclave verify` does
    /// (same roots, collateral and policy flags), and as the enclave the contract names.
    struct AttestedKeyOptions: ParsableArguments {
        @Option(help: "The contract (canonical JSON): the evidence must be of the clean room enclave it names.")
        var contract: String

        @Option(help: "Intel collateral: a directory of PCS/PCCS files, or a JSON bundle in the dcap-qvl layout.")
        var collateral: String?

        @Option(help: "An additional Intel trust anchor (PEM); may repeat.")
        var trustAnchor: [String] = []

        @Flag(help: "Accept evidence from a simulated platform.")
        var allowSimulated = false

        @Flag(help: "SGX without --collateral: verify only the signatures and the PCK chain.")
        var chainOnly = false

        /// The receipt key that `evidence` (a JSON `CleanRoomOpened`) attests, for the contract's enclave: the
        /// evidence verified, its enclave the one `contract` names (signer, product, minimum security version, not
        /// debug), its report data binding the runtime data, which holds the receipt key (`attested`).
        func attestedKey(
            evidence bound: Receipt.BoundEvidence,
            contract required: CleanRoom.Contract,
            what: String,
            attested: (_ reportData: [UInt8], _ runtimeData: [UInt8]) throws -> P256.Signing.PublicKey
        ) async throws -> P256.Signing.PublicKey {
            var options = ["receipt-evidence"]
            if let collateral { options += ["--collateral", collateral] }
            for anchor in trustAnchor { options += ["--trust-anchor", anchor] }
            if allowSimulated { options.append("--allow-simulated") }
            if chainOnly { options.append("--chain-only") }
            let verify = try EnclaveCommand.Verify.parse(options)
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
                        "Error: badReceipt: \(what): its evidence does not verify: \(error.code): \(error.reason)\n"
                            .utf8
                    )
                )
                throw ExitCode(1)
            }
            guard let sgx = claims.sgx, sgx.mrSigner == required.enclave.signerID,
                sgx.isvProductID == required.enclave.productID,
                sgx.isvSVN >= required.enclave.minSecurityVersion, !claims.debug,
                required.enclave.uniqueID.map({ $0 == sgx.mrEnclave }) ?? true
            else {
                FileHandle.standardError.write(
                    Data("Error: badReceipt: \(what): the evidence is not of the enclave the contract names\n".utf8)
                )
                throw ExitCode(1)
            }
            return try EnclaveCommand.CleanRoomCLI.refusing { try attested(claims.reportData, bound.runtimeData) }
        }
    }

    /// `enclave cleanroom result`: results for recipients.
    struct Result: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open an encrypted clean room result as one of its recipients.",
            subcommands: [Open.self]
        )

        struct Open: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Decrypt a result document with a recipient's X25519 key (from `cleanroom keygen --recipient`), "
                    + "beside the verified receipt that names it.",
                discussion: """
                    Results are encrypted with HPKE base mode, which authenticates no sender: anyone with the \
                    recipients' public keys (the host among them) can make a result that opens, or serve one of an \
                    earlier run. So a result opens only beside its receipt: the receipt is verified as `receipt \
                    verify` does (its evidence, of the enclave --contract names; its signature with the receipt key \
                    the evidence binds), and its result digest must be SHA-256 of the result document (`badResult` \
                    otherwise, exit 1). The chain of receipts is checked with `receipt verify`.
                    """
            )

            @Argument(help: "The result document.")
            var result: String

            @Option(help: "The run's receipt (from the host's /receipts/ID): it must name this result.")
            var receipt: String

            @Option(help: "The recipient party's name.")
            var party: String

            @Option(help: "The recipient's private key file (base64url raw X25519 key).")
            var key: String

            @Option(help: "Where to write the plaintext (default: standard output).")
            var out: String?

            @OptionGroup var evidence: AttestedKeyOptions

            func run() async throws {
                let bytes = try Files.read(result, what: "result", limit: CanonicalJSON.maxBytes)
                let receiptBytes = try Files.read(receipt, what: "receipt", limit: 1 << 20)
                let required = try EnclaveCommand.CleanRoomCLI.readContract(evidence.contract)
                let text = try Files.readText(key, what: "recipient key").trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
                guard let raw = Base64URL.decode(text),
                    let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
                else { throw ValidationError("\(key) is not a base64url X25519 private key") }
                let (envelope, parsed) = try EnclaveCommand.CleanRoomCLI.refusing {
                    (try ResultEnvelope(canonicalBytes: bytes), try CleanRoom.Receipt(canonicalBytes: receiptBytes))
                }
                try EnclaveCommand.CleanRoomCLI.refusing {
                    guard parsed.contractID == required.id else {
                        throw CleanRoomError(.badReceipt, "the receipt is of another contract than --contract")
                    }
                }
                let bound = try EnclaveCommand.CleanRoomCLI.refusing { try parsed.boundEvidence() }
                let signer = try await evidence.attestedKey(
                    evidence: bound,
                    contract: required,
                    what: "receipt \(parsed.sequence)"
                ) { reportData, runtimeData in
                    try parsed.attestedKey(reportData: reportData, runtimeData: runtimeData)
                }
                let plaintext = try EnclaveCommand.CleanRoomCLI.refusing {
                    let verified = try VerifiedReceipt(parsed, key: signer)
                    return try envelope.open(as: party, key: privateKey, receipt: verified)
                }
                if let out {
                    try Files.write(plaintext, to: out, mode: 0o600)
                } else {
                    FileHandle.standardOutput.write(Data(plaintext))
                }
            }
        }
    }

    /// `enclave cleanroom receipt`: receipts and halt acknowledgements, offline.
    struct ReceiptCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "receipt",
            abstract: "Verify clean room receipts and halt acknowledgements offline.",
            subcommands: [Verify.self, VerifyHalt.self]
        )

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Verify a chain of receipts (oldest first): evidence, signatures, links, sequence, one contract.",
                discussion: """
                    Each receipt carries the clean room enclave's evidence. It is verified as `enclave verify` does \
                    (same roots, collateral and policy flags) and must be of the enclave --contract names (signer, \
                    product, minimum security version, not debug: without --contract any enclave's evidence would \
                    do, so it is required); its report data must bind the runtime data, which must name the \
                    receipt's contract and hold the receipt key (`receiptKey`, a key of its own: a receipt signed by \
                    the key data keys are wrapped to, or by any other, is refused). --after names the receipt the \
                    first one must follow (default: the first must start the chain); it is trusted as given (not \
                    verified again) and may be a v1 receipt, read for its digest and sequence only, so a chain that \
                    crossed the upgrade to receipt format v2 still links. Any other v1 receipt is refused \
                    (formatOutdated, exit 1): v1 receipts carried the count of suppressed groups; verify them with \
                    the build that made them.
                    """
            )

            @Argument(help: "Receipt documents, oldest first.")
            var receipts: [String]

            @Option(help: "The receipt the first one must follow (trusted as given; may be a v1 receipt).")
            var after: String?

            @OptionGroup var evidence: AttestedKeyOptions

            func run() async throws {
                let documents = try receipts.map { try Files.read($0, what: "receipt", limit: 1 << 20) }
                let previous = try after.map { try Files.read($0, what: "receipt", limit: 1 << 20) }
                let required = try EnclaveCommand.CleanRoomCLI.readContract(evidence.contract)
                let chain = try EnclaveCommand.CleanRoomCLI.refusing {
                    try documents.map { try CleanRoom.Receipt(canonicalBytes: $0) }
                }
                try EnclaveCommand.CleanRoomCLI.refusing {
                    guard chain.allSatisfy({ $0.contractID == required.id }) else {
                        throw CleanRoomError(.badReceipt, "a receipt is of another contract than --contract")
                    }
                }
                // Each receipt's evidence, verified once per distinct evidence document.
                var keys: [[UInt8]: P256.Signing.PublicKey] = [:]
                for receipt in chain where keys[receipt.evidence] == nil {
                    let bound = try EnclaveCommand.CleanRoomCLI.refusing { try receipt.boundEvidence() }
                    keys[receipt.evidence] = try await evidence.attestedKey(
                        evidence: bound,
                        contract: required,
                        what: "receipt \(receipt.sequence)"
                    ) { reportData, runtimeData in
                        try receipt.attestedKey(reportData: reportData, runtimeData: runtimeData)
                    }
                }
                try EnclaveCommand.CleanRoomCLI.refusing {
                    try ReceiptChain.verify(
                        chain,
                        following: try previous.map { try ReceiptLink(document: $0) }
                    ) { receipt throws(CleanRoomError) in
                        guard let key = keys[receipt.evidence] else {
                            throw CleanRoomError(.badReceipt, "receipt \(receipt.sequence): no verified evidence")
                        }
                        return key
                    }
                    for receipt in chain {
                        print(
                            "receipt \(receipt.sequence): contract \(receipt.contractID.hex), query \(receipt.queryID), "
                                + "result \(receipt.result.hex), groups of at least \(receipt.minIdentities) identities, "
                                + "ε \(Double(receipt.epsilonSpentMilli) / 1000): verified"
                        )
                    }
                }
            }
        }

        struct VerifyHalt: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify-halt",
                abstract: "Verify the clean room's acknowledgement of a halt statement.",
                discussion: """
                    The host answers POST /halts with the enclave's acknowledgement (base64url in `acknowledgement`; \
                    write its decoded bytes to a file). It is signed by the receipt key the clean room's evidence \
                    binds (verified as for receipts, as the enclave --contract names) and names the halt statement by \
                    its SHA-256. `durable: saved …, counted` means the enclave saved the halt in its sealed state and \
                    counted it with the rollback counter its evidence binds (`counterKey`) before answering: a \
                    restarted clean room refuses to open under the contract. An acknowledgement of a halt that was \
                    not saved (a host that keeps no state) or not counted (no rollback counter: the host could \
                    restore a state from before the halt) is refused (badReceipt, exit 1). With --broker-key the \
                    counter must be that key broker's (the evidence's counterKey), not one the host chose. No \
                    acknowledgement means the halt may never have reached the enclave.
                    """
            )

            @Argument(help: "The acknowledgement document (canonical JSON).")
            var acknowledgement: String

            @Option(help: "The halt statement it must acknowledge.")
            var halt: String

            @Option(
                help: """
                    The key broker's signing key (PEM: a P-256 public key, or the signing certificate of the broker's \
                    verified evidence): the evidence's counterKey must be it.
                    """
            )
            var brokerKey: String?

            @OptionGroup var evidence: AttestedKeyOptions

            func run() async throws {
                let bytes = try Files.read(acknowledgement, what: "acknowledgement", limit: 1 << 20)
                let haltBytes = try Files.read(halt, what: "halt statement", limit: 8192)
                let required = try EnclaveCommand.CleanRoomCLI.readContract(evidence.contract)
                let parsed = try EnclaveCommand.CleanRoomCLI.refusing { try HaltAcknowledgement(canonicalBytes: bytes) }
                let bound = try EnclaveCommand.CleanRoomCLI.refusing {
                    guard parsed.contractID == required.id else {
                        throw CleanRoomError(.badReceipt, "the acknowledgement is of another contract than --contract")
                    }
                    return try parsed.boundEvidence()
                }
                let key = try await evidence.attestedKey(
                    evidence: bound,
                    contract: required,
                    what: "halt acknowledgement"
                ) { reportData, runtimeData in
                    try parsed.attestedKey(reportData: reportData, runtimeData: runtimeData)
                }
                try EnclaveCommand.CleanRoomCLI.refusing {
                    try parsed.verify(key: key, halt: haltBytes, contract: required)
                    if let brokerKey {
                        try Self.checkCounterKey(bound.runtimeData, is: try Self.brokerKey(brokerKey))
                    }
                }
                let durable =
                    !parsed.durable
                    ? "no: held in the enclave's memory only (its host keeps no state)"
                    : parsed.counted
                        ? "saved in the clean room's sealed state (generation \(parsed.generation)), counted by the "
                            + "rollback counter its evidence binds"
                        : "saved in the clean room's sealed state (generation \(parsed.generation)), not counted (no "
                            + "rollback counter: the host could restore an older state)"
                print(
                    "\(parsed.party)'s halt of contract \(parsed.contractID.hex): acknowledged by the clean room, "
                        + "durable: \(durable)"
                )
                // Not saved, or saved but not counted: a restarted clean room may open as if never halted.
                try EnclaveCommand.CleanRoomCLI.refusing {
                    guard parsed.durable, parsed.counted else {
                        throw CleanRoomError(
                            .badReceipt,
                            "the halt was \(parsed.durable ? "saved but not counted by a rollback counter" : "not saved")"
                                + ": a restarted clean room may open as if it had never been halted"
                        )
                    }
                }
            }

            /// The P-256 key in `path`: a PEM public key or certificate.
            static func brokerKey(_ path: String) throws -> P256.Signing.PublicKey {
                let text = try Files.readText(path, what: "broker key")
                if let key = try? P256.Signing.PublicKey(pemRepresentation: text) { return key }
                guard let certificate = try? Certificate(pemEncoded: text),
                    let key = P256.Signing.PublicKey(certificate.publicKey)
                else { throw ValidationError("\(path) is not a P-256 public key or certificate (PEM)") }
                return key
            }

            /// The evidence's runtime data must bind `key` as `counterKey` (a JWK: P-256 `x`, `y`).
            static func checkCounterKey(_ runtimeData: [UInt8], is key: P256.Signing.PublicKey) throws {
                struct Runtime: Decodable {
                    struct JWK: Decodable {
                        let x: String
                        let y: String
                    }
                    let counterKey: JWK?
                }
                guard let runtime = try? JSONDecoder().decode(Runtime.self, from: Data(runtimeData)) else {
                    throw CleanRoomError(.badReceipt, "halt acknowledgement: the runtime data does not parse")
                }
                guard let jwk = runtime.counterKey else {
                    throw CleanRoomError(
                        .badReceipt,
                        "halt acknowledgement: the evidence binds no counterKey (no rollback counter)"
                    )
                }
                let raw = Array(key.rawRepresentation)
                guard Base64URL.decode(jwk.x) == Array(raw.prefix(32)), Base64URL.decode(jwk.y) == Array(raw.suffix(32))
                else {
                    throw CleanRoomError(
                        .badReceipt,
                        "halt acknowledgement: the evidence's counterKey is not --broker-key (a counter the host chose)"
                    )
                }
            }
        }
    }
}
