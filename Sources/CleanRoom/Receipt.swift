public import Crypto
public import EnclaveCore
import Foundation

/// A signed record of one clean room run, hash-chained to the previous one.
///
/// The body (canonical JSON) holds the format version (2), the contract ID, the query ID and its parameters, the
/// digests of the input data sets (their ciphertext as received) and of the encrypted result, the rules applied
/// (minimum of identities, ε spent), the time, the sequence number, the previous receipt's digest, and the evidence
/// (filled by the enclave: the attestation evidence binding the receipt key). The receipt key signs
/// `EnclaveKit.cleanroom.receipt.v2`, a zero byte, then the body (ES256). The receipt's digest (what the next one
/// links to) is SHA-256 of the whole document, signature included.
///
/// A receipt never says how many groups were suppressed: that count depends on groups below the minimum (with a
/// parameter, on single records), and receipts are public. A v1 receipt (which carried `suppressedGroups`) is
/// refused by name (``CleanRoomError/Code/formatOutdated``).
public struct Receipt: Hashable, Sendable {
    /// The contract.
    public var contractID: Digest32
    /// The query run.
    public var queryID: String
    /// Its parameters, as `type:value` text.
    public var parameters: [String: String]
    /// SHA-256 of each input data set's ciphertext, by data set.
    public var inputs: [String: Digest32]
    /// SHA-256 of the encrypted result document.
    public var result: Digest32
    /// The minimum distinct identities per group applied.
    public var minIdentities: Int64
    /// ε spent, in thousandths.
    public var epsilonSpentMilli: Int64
    /// Seconds since 1970 when the run finished.
    public var time: Int64
    /// Position in the chain, from 0.
    public var sequence: Int64
    /// The previous receipt's digest (absent for the first).
    public var previous: Digest32?
    /// Evidence that binds the receipt key (filled by the enclave; empty until then).
    public var evidence: [UInt8]
    /// The ES256 signature (raw r‖s) over the body.
    public var signature: [UInt8] = []

    /// The format version this code writes and reads.
    public static let formatVersion: Int64 = 2

    static let domain = Array("EnclaveKit.cleanroom.receipt.v2".utf8) + [0]

    /// Creates one from its members, each as documented on its property.
    public init(
        contractID: Digest32,
        queryID: String,
        parameters: [String: SQLValue],
        inputs: [String: Digest32],
        result: Digest32,
        minIdentities: Int64,
        epsilonSpentMilli: Int64,
        time: Int64,
        sequence: Int64,
        previous: Digest32?,
        evidence: [UInt8]
    ) {
        self.contractID = contractID
        self.queryID = queryID
        self.parameters = parameters.mapValues(Self.text)
        self.inputs = inputs
        self.result = result
        self.minIdentities = minIdentities
        self.epsilonSpentMilli = epsilonSpentMilli
        self.time = time
        self.sequence = sequence
        self.previous = previous
        self.evidence = evidence
    }

    static func text(_ value: SQLValue) -> String {
        switch value {
        case .null: return "null:"
        case .integer(let number): return "integer:\(number)"
        case .real(let number): return "real:\(number)"
        case .text(let text): return "text:\(text)"
        }
    }

    var body: [String: CanonicalJSON] {
        var members: [String: CanonicalJSON] = [
            "contract": .string(contractID.hex),
            "query": .string(queryID),
            "parameters": .object(parameters.mapValues { .string($0) }),
            "inputs": .object(inputs.mapValues { .string($0.hex) }),
            "result": .string(result.hex),
            "minIdentities": .integer(minIdentities),
            "version": .integer(Self.formatVersion),
            "epsilonSpentMilli": .integer(epsilonSpentMilli),
            "time": .integer(time),
            "sequence": .integer(sequence),
            "evidence": .string(Base64URL.encode(evidence)),
        ]
        if let previous { members["previous"] = .string(previous.hex) }
        return members
    }

    /// The message signed.
    public var message: [UInt8] { Self.domain + CanonicalJSON.object(body).canonicalBytes }

    /// Sign with the receipt key.
    public mutating func sign(with key: P256.Signing.PrivateKey) throws(CleanRoomError) {
        do {
            signature = Array(try key.signature(for: message).rawRepresentation)
        } catch {
            throw CleanRoomError(.engine, "receipt signing failed")
        }
    }

    /// The canonical document (body and signature).
    public var canonicalBytes: [UInt8] {
        var members = body
        members["signature"] = .string(Base64URL.encode(signature))
        return CanonicalJSON.object(members).canonicalBytes
    }

    /// SHA-256 of the document: what the next receipt's ``previous`` holds.
    public var digest: Digest32 {
        // Force-try is safe: SHA-256 is 32 bytes.
        try! Digest32(bytes: SHA256.hash(data: canonicalBytes))
    }

    /// Read a canonical receipt.
    ///
    /// - Throws: ``CleanRoomError/Code/formatOutdated`` for a receipt of an older format (v1: no `version`, a
    ///   `suppressedGroups` count); ``CleanRoomError/Code/badReceipt`` when it does not parse, is not canonical, is
    ///   of an unknown version or has unknown fields.
    public init(canonicalBytes bytes: [UInt8]) throws(CleanRoomError) {
        var fields: JSONFields
        do throws(CleanRoomError) {
            fields = try JSONFields(try CanonicalJSON.parseCanonical(bytes), "receipt")
        } catch {
            throw CleanRoomError(.badReceipt, "receipt does not parse: \(error.reason)")
        }
        if !fields.has("version"), fields.has("suppressedGroups") {
            throw CleanRoomError(
                .formatOutdated,
                "the receipt is format v1 (no version; it carries the count of suppressed groups): this build reads "
                    + "v\(Self.formatVersion) receipts only"
            )
        }
        let version: Int64
        do throws(CleanRoomError) {
            version = try fields.integer("version", in: 1...Int64.max)
        } catch {
            throw CleanRoomError(.badReceipt, "receipt does not parse: \(error.reason)")
        }
        guard version == Self.formatVersion else {
            throw CleanRoomError(
                version < Self.formatVersion ? .formatOutdated : .badReceipt,
                "the receipt is format v\(version): this build reads v\(Self.formatVersion) receipts only"
            )
        }
        do throws(CleanRoomError) {
            func digest(_ text: String) throws(CleanRoomError) -> Digest32 {
                guard text == text.lowercased(), let value = try? Digest32(hex: text) else {
                    throw CleanRoomError(.malformed, "receipt: \(text) is not a hex SHA-256")
                }
                return value
            }
            contractID = try digest(try fields.string("contract", maxLength: 64))
            queryID = try fields.string("query", maxLength: 128)
            guard case .object(let parameters) = try fields.object("parameters") else {
                throw CleanRoomError(.malformed, "")
            }
            self.parameters = [:]
            for (name, value) in parameters {
                guard case .string(let text) = value else { throw CleanRoomError(.malformed, "receipt parameter") }
                self.parameters[name] = text
            }
            guard case .object(let inputs) = try fields.object("inputs") else { throw CleanRoomError(.malformed, "") }
            self.inputs = [:]
            for (name, value) in inputs {
                guard case .string(let text) = value else { throw CleanRoomError(.malformed, "receipt input") }
                self.inputs[name] = try digest(text)
            }
            result = try digest(try fields.string("result", maxLength: 64))
            minIdentities = try fields.integer("minIdentities", in: 0...Int64.max)
            epsilonSpentMilli = try fields.integer("epsilonSpentMilli", in: 0...Int64.max)
            time = try fields.integer("time", in: 0...Int64.max)
            sequence = try fields.integer("sequence", in: 0...Int64.max)
            previous = fields.has("previous") ? try digest(try fields.string("previous", maxLength: 64)) : nil
            guard let evidence = Base64URL.decode(try fields.string("evidence", maxLength: 1 << 19)),
                let signature = Base64URL.decode(try fields.string("signature", maxLength: 128)), signature.count == 64
            else { throw CleanRoomError(.malformed, "receipt: evidence or signature is not base64url") }
            self.evidence = evidence
            self.signature = signature
            try fields.finish()
        } catch {
            throw CleanRoomError(.badReceipt, "receipt does not parse: \(error.reason)")
        }
    }
}

/// Offline verification of a chain of receipts.
public enum ReceiptChain {
    /// Verify `receipts` (oldest first): each signature with the key its evidence binds (`evidenceKey`, which checks
    /// the evidence and returns the receipt public key it attests), each link to the previous receipt's digest,
    /// consecutive sequence numbers, one contract. The first receipt may start mid-chain; `previous` then says
    /// what it must link to (nil: it must be the chain's first, sequence 0).
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` naming the receipt and the check, or what `evidenceKey` throws.
    /// - Returns: the receipts, verified (what ``ResultEnvelope/open(as:key:receipt:)`` takes).
    @discardableResult
    public static func verify(
        _ receipts: [Receipt],
        after previous: Receipt? = nil,
        evidenceKey: (Receipt) throws(CleanRoomError) -> P256.Signing.PublicKey
    ) throws(CleanRoomError) -> [VerifiedReceipt] {
        try verify(receipts, following: previous.map(ReceiptLink.init), evidenceKey: evidenceKey)
    }

    /// Verify `receipts` as ``verify(_:after:evidenceKey:)`` does, the first one following `link` (nil: it must be
    /// the chain's first, sequence 0): a ``ReceiptLink`` can be read from a receipt of an older format.
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` naming the receipt and the check, or what `evidenceKey` throws.
    /// - Returns: the receipts, verified.
    @discardableResult
    public static func verify(
        _ receipts: [Receipt],
        following link: ReceiptLink?,
        evidenceKey: (Receipt) throws(CleanRoomError) -> P256.Signing.PublicKey
    ) throws(CleanRoomError) -> [VerifiedReceipt] {
        var last = link
        var verified: [VerifiedReceipt] = []
        for receipt in receipts {
            verified.append(try VerifiedReceipt(receipt, key: try evidenceKey(receipt)))
            if let last {
                guard receipt.previous == last.digest, receipt.sequence == last.sequence + 1 else {
                    throw CleanRoomError(
                        .badReceipt,
                        "receipt \(receipt.sequence): does not follow receipt \(last.sequence)"
                    )
                }
                guard receipt.contractID == last.contractID else {
                    throw CleanRoomError(.badReceipt, "receipt \(receipt.sequence): another contract")
                }
            } else {
                guard receipt.previous == nil, receipt.sequence == 0 else {
                    throw CleanRoomError(.badReceipt, "receipt \(receipt.sequence): the chain's start is missing")
                }
            }
            last = ReceiptLink(receipt)
        }
        return verified
    }
}

/// A receipt whose signature verified with the receipt key its evidence attests: what a result is opened against
/// (``ResultEnvelope/open(as:key:receipt:)``).
///
/// Made by ``ReceiptChain/verify(_:after:evidenceKey:)`` or ``init(_:key:)``; the key must come from
/// ``Receipt/attestedKey(reportData:runtimeData:)`` over evidence verified with the platform's roots (and, for the
/// contract's enclave, its signer, product and minimum security version).
public struct VerifiedReceipt: Hashable, Sendable {
    /// The receipt.
    public let receipt: Receipt

    /// Verify `receipt`'s signature with `key`, the receipt key its verified evidence attests.
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` when the signature does not verify.
    public init(_ receipt: Receipt, key: P256.Signing.PublicKey) throws(CleanRoomError) {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: receipt.signature),
            key.isValidSignature(signature, for: receipt.message)
        else { throw CleanRoomError(.badReceipt, "receipt \(receipt.sequence): the signature does not verify") }
        self.receipt = receipt
    }
}

extension Receipt {
    /// The evidence a receipt carries: what the clean room enclave answered when it opened (`CleanRoomOpened` as
    /// JSON): the contract ID, the runtime data and the evidence whose report data starts with SHA-256 of it.
    public struct BoundEvidence: Decodable, Sendable {
        /// The contract ID, lower-case hex.
        public var contractID: String
        /// The runtime data: `{"challenge"?, "contract", "keys": [JWK], "receiptKey": JWK}`.
        public var runtimeData: [UInt8]
        /// The evidence (the quote or report), to verify with the platform's roots.
        public var evidence: AttestationEvidence
    }

    /// The evidence this receipt carries, parsed (not verified: verify ``BoundEvidence/evidence`` with the
    /// platform's roots, then ``attestedKey(reportData:runtimeData:)`` with its report data).
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` when it does not parse.
    public func boundEvidence() throws(CleanRoomError) -> BoundEvidence {
        try Self.boundEvidence(evidence, what: "receipt \(sequence)")
    }

    static func boundEvidence(_ evidence: [UInt8], what: String) throws(CleanRoomError) -> BoundEvidence {
        do {
            return try JSONDecoder().decode(BoundEvidence.self, from: Data(evidence))
        } catch {
            throw CleanRoomError(.badReceipt, "\(what): the evidence does not parse")
        }
    }

    /// The receipt key that verified evidence attests for this receipt: the evidence's report data must start with
    /// SHA-256 of `runtimeData`, which must name this receipt's contract and hold a P-256 `receiptKey` (a signing
    /// key of its own, never the key data keys are wrapped to: a receipt signed by that key or any other does not
    /// verify).
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` naming the check that failed.
    public func attestedKey(reportData: [UInt8], runtimeData: [UInt8]) throws(CleanRoomError) -> P256.Signing.PublicKey
    {
        try Self.attestedKey(
            reportData: reportData,
            runtimeData: runtimeData,
            contractID: contractID,
            what: "receipt \(sequence)"
        )
    }

    static func attestedKey(
        reportData: [UInt8],
        runtimeData: [UInt8],
        contractID: Digest32,
        what: String
    ) throws(CleanRoomError) -> P256.Signing.PublicKey {
        guard reportData.count >= 32, Array(reportData.prefix(32)) == Array(SHA256.hash(data: runtimeData)) else {
            throw CleanRoomError(.badReceipt, "\(what): the evidence does not bind the runtime data")
        }
        struct JWK: Decodable {
            let kty: String
            let crv: String
            let x: String
            let y: String
        }
        struct Runtime: Decodable {
            let contract: String
            let receiptKey: JWK?
        }
        guard let runtime = try? JSONDecoder().decode(Runtime.self, from: Data(runtimeData)) else {
            throw CleanRoomError(.badReceipt, "\(what): the runtime data does not parse")
        }
        guard runtime.contract == contractID.hex else {
            throw CleanRoomError(.badReceipt, "\(what): the evidence binds contract \(runtime.contract)")
        }
        guard let jwk = runtime.receiptKey, jwk.kty == "EC", jwk.crv == "P-256",
            let x = Base64URL.decode(jwk.x), let y = Base64URL.decode(jwk.y), x.count == 32, y.count == 32,
            let key = try? P256.Signing.PublicKey(rawRepresentation: x + y)
        else { throw CleanRoomError(.badReceipt, "\(what): the evidence binds no P-256 receipt key") }
        return key
    }
}
