public import Crypto
public import EnclaveCore
import Foundation

/// A query result encrypted to each of the contract's result recipients with HPKE (RFC 9180, base mode,
/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM).
///
/// The HPKE `info` binds the contract ID and the query ID (`EnclaveKit.cleanroom.result.v1`, zero byte, contract
/// ID, query ID), so a result cannot be passed off as another contract's or query's. The document is canonical
/// JSON; its SHA-256 is the result digest a receipt names. Base mode authenticates no sender: a recipient opens a
/// result only beside the verified receipt naming its digest (``open(as:key:receipt:)``).
public struct ResultEnvelope: Hashable, Sendable {
    /// One recipient's copy.
    public struct Copy: Hashable, Sendable {
        /// The recipient party.
        public var party: String
        /// The HPKE encapsulated key.
        public var encapsulatedKey: [UInt8]
        /// The ciphertext (with tag).
        public var ciphertext: [UInt8]
    }

    /// The contract.
    public var contractID: Digest32
    /// The query.
    public var queryID: String
    /// One copy per recipient.
    public var copies: [Copy]

    static let suite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256)

    static func info(_ contractID: Digest32, _ queryID: String) -> Data {
        Data(Array("EnclaveKit.cleanroom.result.v1".utf8) + [0] + contractID.bytes + Array(queryID.utf8))
    }

    /// Encrypt `result` to `recipients` (party names), each of which must be a recipient of `contract`.
    ///
    /// - Throws: ``CleanRoomError/Code/unknownRecipient`` for a name that is not a contract recipient.
    public init(
        sealing result: [UInt8],
        contract: Contract,
        queryID: String,
        recipients: [String]
    ) throws(CleanRoomError) {
        let id = contract.id
        var copies: [Copy] = []
        for party in recipients.sorted() {
            guard let recipient = contract.recipients.first(where: { $0.party == party }) else {
                throw CleanRoomError(.unknownRecipient, "\(party) is not a result recipient of the contract")
            }
            do {
                var sender = try HPKE.Sender(
                    recipientKey: recipient.key,
                    ciphersuite: Self.suite,
                    info: Self.info(id, queryID)
                )
                let ciphertext = try sender.seal(result)
                copies.append(
                    Copy(party: party, encapsulatedKey: Array(sender.encapsulatedKey), ciphertext: Array(ciphertext))
                )
            } catch {
                throw CleanRoomError(.engine, "HPKE sealing failed")
            }
        }
        self.init(contractID: id, queryID: queryID, copies: copies)
    }

    /// Creates one from its members, each as documented on its property.
    public init(contractID: Digest32, queryID: String, copies: [Copy]) {
        self.contractID = contractID
        self.queryID = queryID
        self.copies = copies
    }

    /// The canonical document.
    public var canonicalBytes: [UInt8] {
        CanonicalJSON.object([
            "contract": .string(contractID.hex),
            "query": .string(queryID),
            "copies": .array(
                copies.map {
                    .object([
                        "party": .string($0.party),
                        "enc": .string(Base64URL.encode($0.encapsulatedKey)),
                        "ciphertext": .string(Base64URL.encode($0.ciphertext)),
                    ])
                }
            ),
        ]).canonicalBytes
    }

    /// SHA-256 of the canonical document (what a receipt names).
    public var digest: Digest32 {
        // Force-try is safe: SHA-256 is 32 bytes.
        try! Digest32(bytes: SHA256.hash(data: canonicalBytes))
    }

    /// Read a canonical document.
    public init(canonicalBytes bytes: [UInt8]) throws(CleanRoomError) {
        var fields = try JSONFields(try CanonicalJSON.parseCanonical(bytes), "result")
        let contract = try fields.string("contract", maxLength: 64)
        let query = try fields.string("query", maxLength: 128)
        var copies: [Copy] = []
        for item in try fields.array("copies", maxCount: 64) {
            var copy = try JSONFields(item, "result copy")
            let party = try copy.string("party", maxLength: 128)
            let enc = try copy.string("enc", maxLength: 256)
            let ciphertext = try copy.string("ciphertext", maxLength: CanonicalJSON.maxBytes)
            try copy.finish()
            guard let encBytes = Base64URL.decode(enc), let body = Base64URL.decode(ciphertext) else {
                throw CleanRoomError(.malformed, "result copy for \(party) is not base64url")
            }
            copies.append(Copy(party: party, encapsulatedKey: encBytes, ciphertext: body))
        }
        try fields.finish()
        guard let id = try? Digest32(hex: contract) else {
            throw CleanRoomError(.malformed, "result: contract is not a hex SHA-256")
        }
        self.init(contractID: id, queryID: query, copies: copies)
    }

    /// Decrypt the copy of `party` with its private key, once `receipt` names this very document.
    ///
    /// HPKE base mode authenticates no sender: anyone with the recipients' public keys (the host among them) can
    /// make an envelope that opens, or serve one of an earlier run. Only the receipt, signed by the key the clean
    /// room's evidence binds, says which result the enclave made: its result digest must be SHA-256 of this document,
    /// and its contract and query this document's.
    ///
    /// - Throws: ``CleanRoomError/Code/badResult`` when the receipt names another document, contract or query;
    ///   ``CleanRoomError/Code/unknownRecipient`` when there is no copy for `party`;
    ///   ``CleanRoomError/Code/dataTampered`` when it does not open (wrong key, tampered, other contract or query).
    public func open(
        as party: String,
        key: Curve25519.KeyAgreement.PrivateKey,
        receipt: VerifiedReceipt
    ) throws(CleanRoomError) -> [UInt8] {
        let named = receipt.receipt
        guard named.contractID == contractID, named.queryID == queryID else {
            throw CleanRoomError(
                .badResult,
                "the result is of contract \(contractID) query \(queryID), the receipt of contract \(named.contractID) "
                    + "query \(named.queryID)"
            )
        }
        guard named.result == digest else {
            throw CleanRoomError(
                .badResult,
                "the result's SHA-256 is \(digest), receipt \(named.sequence) names \(named.result): not the result the "
                    + "clean room made for it (forged or swapped)"
            )
        }
        return try open(as: party, key: key)
    }

    /// Decrypt the copy of `party` with its private key, without checking which run made it (the package's own tests
    /// and bench only: recipients use ``open(as:key:receipt:)``).
    ///
    /// - Throws: ``CleanRoomError/Code/unknownRecipient`` when there is no copy for `party`,
    ///   ``CleanRoomError/Code/dataTampered`` when it does not open (wrong key, tampered, other contract or query).
    package func open(as party: String, key: Curve25519.KeyAgreement.PrivateKey) throws(CleanRoomError) -> [UInt8] {
        guard let copy = copies.first(where: { $0.party == party }) else {
            throw CleanRoomError(.unknownRecipient, "the result has no copy for \(party)")
        }
        do {
            var recipient = try HPKE.Recipient(
                privateKey: key,
                ciphersuite: Self.suite,
                info: Self.info(contractID, queryID),
                encapsulatedKey: Data(copy.encapsulatedKey)
            )
            return Array(try recipient.open(copy.ciphertext))
        } catch {
            throw CleanRoomError(.dataTampered, "the result copy for \(party) does not open with this key")
        }
    }
}
