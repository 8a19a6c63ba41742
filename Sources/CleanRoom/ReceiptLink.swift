internal import Crypto
public import EnclaveCore

/// What the next receipt of a chain links to: a receipt's contract, sequence number and digest.
///
/// ``ReceiptChain/verify(_:following:evidenceKey:)`` takes one to check receipts that start mid-chain. It is read
/// from a receipt the caller already trusts (verified earlier), of this format or of an older one: a clean room
/// that ran before receipt format v2 continues its chain after the upgrade (its first v2 receipt links to its last
/// v1 receipt's digest), and v1 receipts are otherwise refused (`formatOutdated`).
public struct ReceiptLink: Hashable, Sendable {
    /// The contract.
    public var contractID: Digest32
    /// The receipt's position in the chain.
    public var sequence: Int64
    /// SHA-256 of the receipt's canonical document: what the next receipt's `previous` holds.
    public var digest: Digest32

    /// The link to `receipt`.
    public init(_ receipt: Receipt) {
        contractID = receipt.contractID
        sequence = receipt.sequence
        digest = receipt.digest
    }

    /// The link to the receipt document `bytes`: a current receipt, or one of an older format (v1), which is read
    /// for its contract and sequence number only (its digest is SHA-256 of the canonical document). Nothing is
    /// verified: the caller trusts this receipt.
    ///
    /// - Throws: ``CleanRoomError/Code/badReceipt`` when it is neither.
    public init(document bytes: [UInt8]) throws(CleanRoomError) {
        let receipt: Receipt
        do throws(CleanRoomError) {
            receipt = try Receipt(canonicalBytes: bytes)
        } catch {
            guard error.code == .formatOutdated else { throw error }
            guard case .object(let members) = try? CanonicalJSON.parseCanonical(bytes),
                case .string(let contract) = members["contract"], contract == contract.lowercased(),
                let contractID = try? Digest32(hex: contract),
                case .integer(let sequence) = members["sequence"], sequence >= 0
            else {
                throw CleanRoomError(.badReceipt, "the receipt of an older format has no contract or sequence")
            }
            self.contractID = contractID
            self.sequence = sequence
            // Force-try is safe: SHA-256 is 32 bytes.
            digest = try! Digest32(bytes: SHA256.hash(data: bytes))
            return
        }
        contractID = receipt.contractID
        sequence = receipt.sequence
        digest = receipt.digest
    }
}
