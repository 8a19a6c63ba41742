public import Crypto
public import EnclaveCore

/// The clean room enclave's signed acknowledgement of a halt: the statement is in force in the enclave and, when
/// ``durable``, saved in its sealed state at ``generation`` (counted by the key broker's rollback counter when the
/// evidence binds its key) before the enclave answered.
///
/// The receipt key (bound in the enclave's evidence, like receipts) signs `EnclaveKit.cleanroom.haltAck.v1`, a zero
/// byte, then the canonical JSON body `{"contract", "counted", "durable", "evidence", "generation", "halt", "party"}`
/// (`halt`:
/// SHA-256 of the halt statement's canonical bytes); the document adds `"signature"`. A party that gets no
/// acknowledgement for its halt must assume the host never delivered it.
public struct HaltAcknowledgement: Hashable, Sendable {
    /// The contract halted.
    public var contractID: Digest32
    /// The party that halted it.
    public var party: String
    /// SHA-256 of the halt statement's canonical bytes (``digest(ofHalt:)``).
    public var halt: Digest32
    /// Whether the halt is saved in the clean room's sealed durable state (false: the host keeps no state, so the
    /// halt holds only in this enclave's memory).
    public var durable: Bool
    /// Whether that save was counted by the rollback counter whose key the evidence binds (`counterKey` in its
    /// runtime data): only then can't the host restore an older state without the halt.
    public var counted: Bool
    /// The durable state's generation that holds the halt (0 when not ``durable``).
    public var generation: UInt64
    /// The evidence binding the receipt key (a JSON `CleanRoomOpened`, as receipts carry it).
    public var evidence: [UInt8]
    /// The ES256 signature (raw r‖s) over ``message``.
    public var signature: [UInt8] = []

    static let domain = Array("EnclaveKit.cleanroom.haltAck.v1".utf8) + [0]

    /// Creates one from its members, each as documented on its property.
    public init(
        contractID: Digest32,
        party: String,
        halt: Digest32,
        durable: Bool,
        counted: Bool,
        generation: UInt64,
        evidence: [UInt8]
    ) {
        self.contractID = contractID
        self.party = party
        self.halt = halt
        self.durable = durable
        self.counted = counted
        self.generation = generation
        self.evidence = evidence
    }

    /// SHA-256 of a halt statement's canonical bytes: what an acknowledgement names.
    public static func digest(ofHalt bytes: [UInt8]) -> Digest32 {
        // Force-try is safe: SHA-256 is 32 bytes.
        try! Digest32(bytes: SHA256.hash(data: bytes))
    }

    var body: [String: CanonicalJSON] {
        [
            "contract": .string(contractID.hex),
            "party": .string(party),
            "halt": .string(halt.hex),
            "durable": .bool(durable),
            "counted": .bool(counted),
            "generation": .integer(Int64(truncatingIfNeeded: generation)),
            "evidence": .string(Base64URL.encode(evidence)),
        ]
    }

    /// The message signed.
    public var message: [UInt8] { Self.domain + CanonicalJSON.object(body).canonicalBytes }

    /// Sign with the receipt key.
    public mutating func sign(with key: P256.Signing.PrivateKey) throws(CleanRoomError) {
        do {
            signature = Array(try key.signature(for: message).rawRepresentation)
        } catch {
            throw CleanRoomError(.engine, "halt acknowledgement signing failed")
        }
    }

    /// The canonical document (body and signature).
    public var canonicalBytes: [UInt8] {
        var members = body
        members["signature"] = .string(Base64URL.encode(signature))
        return CanonicalJSON.object(members).canonicalBytes
    }

    /// Read a canonical acknowledgement.
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` when it does not parse, is not canonical or has unknown fields.
    public init(canonicalBytes bytes: [UInt8]) throws(CleanRoomError) {
        do throws(CleanRoomError) {
            var fields = try JSONFields(try CanonicalJSON.parseCanonical(bytes), "halt acknowledgement")
            func digest(_ text: String) throws(CleanRoomError) -> Digest32 {
                guard text == text.lowercased(), let value = try? Digest32(hex: text) else {
                    throw CleanRoomError(.malformed, "halt acknowledgement: \(text) is not a hex SHA-256")
                }
                return value
            }
            contractID = try digest(try fields.string("contract", maxLength: 64))
            party = try fields.string("party", maxLength: 128)
            halt = try digest(try fields.string("halt", maxLength: 64))
            durable = try fields.bool("durable")
            counted = try fields.bool("counted")
            generation = UInt64(try fields.integer("generation", in: 0...Int64.max))
            guard let evidence = Base64URL.decode(try fields.string("evidence", maxLength: 1 << 19)),
                let signature = Base64URL.decode(try fields.string("signature", maxLength: 128)), signature.count == 64
            else { throw CleanRoomError(.malformed, "halt acknowledgement: evidence or signature is not base64url") }
            self.evidence = evidence
            self.signature = signature
            try fields.finish()
        } catch {
            throw CleanRoomError(.badReceipt, "halt acknowledgement does not parse: \(error.reason)")
        }
    }

    /// The evidence this acknowledgement carries, parsed (not verified: verify its evidence with the platform's
    /// roots, then ``attestedKey(reportData:runtimeData:)`` with its report data).
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` when it does not parse.
    public func boundEvidence() throws(CleanRoomError) -> Receipt.BoundEvidence {
        try Receipt.boundEvidence(evidence, what: "halt acknowledgement")
    }

    /// The receipt key that verified evidence attests for this acknowledgement (as for receipts: the report data
    /// binds the runtime data, which names this contract and holds a P-256 `receiptKey`).
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` naming the check that failed.
    public func attestedKey(reportData: [UInt8], runtimeData: [UInt8]) throws(CleanRoomError) -> P256.Signing.PublicKey
    {
        try Receipt.attestedKey(
            reportData: reportData,
            runtimeData: runtimeData,
            contractID: contractID,
            what: "halt acknowledgement"
        )
    }

    /// Check that this acknowledges `halt` (the statement's canonical bytes) of `contract`, signed with `key` (the
    /// receipt key the verified evidence attests).
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` naming the check that failed.
    public func verify(key: P256.Signing.PublicKey, halt: [UInt8], contract: Contract) throws(CleanRoomError) {
        guard contractID == contract.id else {
            throw CleanRoomError(.badReceipt, "the acknowledgement is for contract \(contractID), not \(contract.id)")
        }
        guard self.halt == Self.digest(ofHalt: halt) else {
            throw CleanRoomError(.badReceipt, "the acknowledgement names another halt statement")
        }
        let statement: HaltStatement
        do {
            statement = try HaltStatement(canonicalBytes: halt)
        } catch {
            throw CleanRoomError(.badReceipt, "the halt statement does not parse: \(error.reason)")
        }
        guard statement.party == party else {
            throw CleanRoomError(.badReceipt, "the acknowledgement names \(party), the halt is \(statement.party)'s")
        }
        guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            key.isValidSignature(ecdsa, for: message)
        else { throw CleanRoomError(.badReceipt, "the acknowledgement's signature does not verify") }
    }
}
