public import Crypto
public import EnclaveCore

/// A party's ES256 signature over a contract: "I agree to the contract with this ID".
///
/// The signed message is domain-separated: the ASCII bytes `EnclaveKit.cleanroom.contract.v1`, a zero byte, then
/// the 32-byte contract ID (SHA-256 of the canonical bytes); ECDSA P-256 with SHA-256 over that message. The
/// document is canonical JSON `{"contract": hex ID, "party": name, "signature": base64url raw r‖s}`.
public struct ContractSignature: Hashable, Sendable {
    /// The ID of the contract signed.
    public var contractID: Digest32
    /// The signing party's name.
    public var party: String
    /// The raw 64-byte ECDSA signature (r‖s).
    public var signature: [UInt8]

    static let domain = Array("EnclaveKit.cleanroom.contract.v1".utf8) + [0]

    /// The message a party signs to accept contract `id`.
    public static func message(contractID id: Digest32) -> [UInt8] { domain + id.bytes }

    /// Sign `contract` as `party` with `key`.
    public init(signing contract: Contract, as party: String, key: P256.Signing.PrivateKey) throws(CleanRoomError) {
        guard let member = contract.party(party) else {
            throw CleanRoomError(.notAParty, "\(party) is not a party of contract \(contract.id)")
        }
        guard member.signingKey.x963Representation == key.publicKey.x963Representation else {
            throw CleanRoomError(.badSignature, "the key is not \(party)'s signing key in the contract")
        }
        let id = contract.id
        do {
            let signature = try key.signature(for: Self.message(contractID: id))
            self.init(contractID: id, party: party, signature: Array(signature.rawRepresentation))
        } catch {
            throw CleanRoomError(.badSignature, "ECDSA signing failed")
        }
    }

    /// Creates one from its members, each as documented on its property.
    public init(contractID: Digest32, party: String, signature: [UInt8]) {
        self.contractID = contractID
        self.party = party
        self.signature = signature
    }

    /// The canonical document.
    public var canonicalBytes: [UInt8] {
        CanonicalJSON.object([
            "contract": .string(contractID.hex),
            "party": .string(party),
            "signature": .string(Base64URL.encode(signature)),
        ]).canonicalBytes
    }

    /// Read a canonical signature document.
    ///
    /// - Throws: ``CleanRoomError/Code/malformed``, ``CleanRoomError/Code/nonCanonical``,
    ///   ``CleanRoomError/Code/unknownField``.
    public init(canonicalBytes bytes: [UInt8]) throws(CleanRoomError) {
        var fields = try JSONFields(try CanonicalJSON.parseCanonical(bytes), "contract signature")
        let contract = try fields.string("contract", maxLength: 64)
        let party = try fields.string("party", maxLength: 128)
        let encoded = try fields.string("signature", maxLength: 128)
        try fields.finish()
        guard contract == contract.lowercased(), let id = try? Digest32(hex: contract) else {
            throw CleanRoomError(.malformed, "signature: contract is not a lower-case hex SHA-256")
        }
        guard let raw = Base64URL.decode(encoded), raw.count == 64, Base64URL.encode(raw) == encoded else {
            throw CleanRoomError(.malformed, "signature: not a base64url 64-byte ECDSA signature")
        }
        self.init(contractID: id, party: party, signature: raw)
    }

    /// Check this signature against `contract`: same contract ID, a party of it, and a valid ES256 signature by
    /// that party's key.
    ///
    /// - Throws: ``CleanRoomError/Code/wrongContract``, ``CleanRoomError/Code/notAParty``,
    ///   ``CleanRoomError/Code/badSignature``.
    public func verify(for contract: Contract) throws(CleanRoomError) {
        let id = contract.id
        guard contractID == id else {
            throw CleanRoomError(.wrongContract, "\(party)'s signature is over contract \(contractID), not \(id)")
        }
        guard let member = contract.party(party) else {
            throw CleanRoomError(.notAParty, "a signature names \(party), who is not a party of the contract")
        }
        guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            member.signingKey.isValidSignature(ecdsa, for: Self.message(contractID: id))
        else {
            throw CleanRoomError(.badSignature, "\(party)'s signature does not verify with \(party)'s key")
        }
    }
}
