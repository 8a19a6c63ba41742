public import Crypto
public import EnclaveCore

/// A party's signed statement that a contract must stop: nothing runs under it afterwards.
///
/// Any single party can halt. The signed message is `EnclaveKit.cleanroom.halt.v1`, a zero byte, then the
/// canonical JSON of `{"contract", "party", "reason"}`; the document adds `"signature"` (base64url raw r‖s).
public struct HaltStatement: Hashable, Sendable {
    /// The contract halted.
    public var contractID: Digest32
    /// The party halting it.
    public var party: String
    /// Why, for people.
    public var reason: String
    /// The raw 64-byte ECDSA signature.
    public var signature: [UInt8]

    static let domain = Array("EnclaveKit.cleanroom.halt.v1".utf8) + [0]

    var signedBody: CanonicalJSON {
        .object(["contract": .string(contractID.hex), "party": .string(party), "reason": .string(reason)])
    }

    /// The message signed.
    public var message: [UInt8] { Self.domain + signedBody.canonicalBytes }

    /// Halt `contract` as `party`.
    public init(
        halting contract: Contract,
        as party: String,
        reason: String,
        key: P256.Signing.PrivateKey
    ) throws(CleanRoomError) {
        guard let member = contract.party(party) else {
            throw CleanRoomError(.notAParty, "\(party) is not a party of contract \(contract.id)")
        }
        guard member.signingKey.x963Representation == key.publicKey.x963Representation else {
            throw CleanRoomError(.badSignature, "the key is not \(party)'s signing key in the contract")
        }
        guard reason.utf8.count <= 1024 else { throw CleanRoomError(.limitExceeded, "halt reason over 1024 bytes") }
        self.init(contractID: contract.id, party: party, reason: CanonicalJSON.nfc(reason), signature: [])
        do {
            signature = Array(try key.signature(for: message).rawRepresentation)
        } catch {
            throw CleanRoomError(.badSignature, "ECDSA signing failed")
        }
    }

    /// Creates one from its members, each as documented on its property.
    public init(contractID: Digest32, party: String, reason: String, signature: [UInt8]) {
        self.contractID = contractID
        self.party = party
        self.reason = reason
        self.signature = signature
    }

    /// The canonical document.
    public var canonicalBytes: [UInt8] {
        guard case .object(var members) = signedBody else { return [] }
        members["signature"] = .string(Base64URL.encode(signature))
        return CanonicalJSON.object(members).canonicalBytes
    }

    /// Read a canonical halt statement.
    public init(canonicalBytes bytes: [UInt8]) throws(CleanRoomError) {
        var fields = try JSONFields(try CanonicalJSON.parseCanonical(bytes), "halt statement")
        let contract = try fields.string("contract", maxLength: 64)
        let party = try fields.string("party", maxLength: 128)
        let reason = try fields.string("reason", maxLength: 1024)
        let encoded = try fields.string("signature", maxLength: 128)
        try fields.finish()
        guard contract == contract.lowercased(), let id = try? Digest32(hex: contract) else {
            throw CleanRoomError(.malformed, "halt: contract is not a lower-case hex SHA-256")
        }
        guard let raw = Base64URL.decode(encoded), raw.count == 64, Base64URL.encode(raw) == encoded else {
            throw CleanRoomError(.malformed, "halt: not a base64url 64-byte ECDSA signature")
        }
        self.init(contractID: id, party: party, reason: reason, signature: raw)
    }

    /// Check the statement against `contract`.
    ///
    /// - Throws: ``CleanRoomError/Code/wrongContract``, ``CleanRoomError/Code/notAParty``,
    ///   ``CleanRoomError/Code/badSignature``.
    public func verify(for contract: Contract) throws(CleanRoomError) {
        let id = contract.id
        guard contractID == id else {
            throw CleanRoomError(.wrongContract, "\(party)'s halt statement is for contract \(contractID), not \(id)")
        }
        guard let member = contract.party(party) else {
            throw CleanRoomError(.notAParty, "a halt statement names \(party), who is not a party of the contract")
        }
        guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            member.signingKey.isValidSignature(ecdsa, for: message)
        else {
            throw CleanRoomError(.badSignature, "\(party)'s halt statement does not verify with \(party)'s key")
        }
    }
}
