import CleanRoom
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import Synchronization

/// The clean room's state inside the enclave: the contract it serves, its phase and its ephemeral key.
///
/// The key agreement key is the one data keys are wrapped to (JWE `ECDH-ES+A256KW` by the key broker); it never
/// leaves the enclave.
final class CleanRoomState: Sendable {
    struct Opened {
        var contract: Contract
        var state: ContractState
        var key: P256.KeyAgreement.PrivateKey
    }

    private let opened = Mutex<Opened?>(nil)

    /// Verify the request and open (or re-attest) the clean room; answers the contract ID and the runtime data to
    /// bind.
    func open(
        _ request: CleanRoomOpenRequest,
        identity: EnclaveIdentity
    ) throws -> (contractID: String, runtime: [UInt8]) {
        guard request.contract.count <= CleanRoomOpenRequest.maxContractBytes else {
            throw EnclaveError.limitExceeded("limitExceeded: the contract is over 1 MiB")
        }
        let documents = request.signatures + request.halts
        guard request.signatures.count <= CleanRoomOpenRequest.maxDocuments,
            request.halts.count <= CleanRoomOpenRequest.maxDocuments,
            documents.allSatisfy({ $0.count <= CleanRoomOpenRequest.maxDocumentBytes })
        else {
            throw EnclaveError.limitExceeded("limitExceeded: too many or too large signature or halt documents")
        }
        if let challenge = request.challenge {
            guard challenge.utf8.count <= 256,
                challenge.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C })
            else { throw EnclaveError.malformedInput("malformed: the challenge is not a short token") }
        }
        let contract: Contract
        let state: ContractState
        do throws(CleanRoomError) {
            contract = try Contract(canonicalBytes: request.contract)
            try contract.validate()
            let signatures = try request.signatures.map { (bytes) throws(CleanRoomError) in
                try ContractSignature(canonicalBytes: bytes)
            }
            let halts = try request.halts.map { (bytes) throws(CleanRoomError) in
                try HaltStatement(canonicalBytes: bytes)
            }
            state = try ContractState.evaluate(contract, signatures: signatures, halts: halts)
            try state.requireActive()
        } catch {
            throw Self.crossing(error)
        }
        try Self.check(identity, against: contract.enclave)
        let id = contract.id
        let key = try opened.withLock { current throws -> P256.KeyAgreement.PrivateKey in
            if let current {
                guard current.contract.id == id else {
                    throw EnclaveError.callFailed(
                        "wrongContract: this clean room serves contract \(current.contract.id), not \(id)"
                    )
                }
                guard current.state.phase == .active else {
                    throw EnclaveError.callFailed("halted: this clean room's contract was halted")
                }
                return current.key
            }
            let key = P256.KeyAgreement.PrivateKey()
            current = Opened(contract: contract, state: state, key: key)
            return key
        }
        return (id.hex, try Self.runtimeData(contractID: id, key: key.publicKey, challenge: request.challenge))
    }

    /// Apply a halt statement: it must verify for the open contract.
    func halt(_ bytes: [UInt8]) throws -> CleanRoomStatusReport {
        guard bytes.count <= CleanRoomOpenRequest.maxDocumentBytes else {
            throw EnclaveError.limitExceeded("limitExceeded: the halt statement is over 4 KiB")
        }
        try opened.withLock { current throws in
            guard var room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            do throws(CleanRoomError) {
                let statement = try HaltStatement(canonicalBytes: bytes)
                try statement.verify(for: room.contract)
                if !room.state.halts.contains(where: { $0.party == statement.party }) {
                    room.state.halts.append((statement.party, statement.reason))
                }
                room.state.phase = .halted
            } catch {
                throw Self.crossing(error)
            }
            current = room
        }
        return status()
    }

    /// The status.
    func status() -> CleanRoomStatusReport {
        opened.withLock { current in
            guard let current else { return CleanRoomStatusReport(phase: .closed) }
            return CleanRoomStatusReport(
                phase: current.state.phase == .halted ? .halted : .open,
                contractID: current.contract.id.hex,
                signedBy: current.state.signedBy,
                halts: current.state.halts.map { .init(party: $0.party, reason: $0.reason) }
            )
        }
    }

    /// Refuse to serve a contract that names another enclave: another signer, another product, a lower security
    /// version, or a debug enclave (whose memory the host can read).
    static func check(_ identity: EnclaveIdentity, against required: Contract.EnclaveRequirement) throws {
        guard identity.signerID == required.signerID else {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract names signer \(required.signerID), this enclave is \(identity.signerID)"
            )
        }
        guard identity.productID == required.productID else {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract names product \(required.productID), this enclave is "
                    + "\(identity.productID)"
            )
        }
        guard identity.securityVersion >= required.minSecurityVersion else {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract requires security version \(required.minSecurityVersion), this "
                    + "enclave is \(identity.securityVersion)"
            )
        }
        guard !identity.attributes.contains(.debug) else {
            throw EnclaveError.debugNotAllowed("enclaveMismatch: a debug enclave cannot serve a contract")
        }
    }

    /// The runtime data bound into the evidence: `{"challenge"?, "contract": hex, "keys": [JWK]}`, sorted keys.
    static func runtimeData(
        contractID: Digest32,
        key: P256.KeyAgreement.PublicKey,
        challenge: String?
    ) throws -> [UInt8] {
        struct Runtime: Encodable {
            let challenge: String?
            let contract: String
            let keys: [WrapJWK]
        }
        let jwk = WrapJWK(p256: key, kid: "cleanroom-\(contractID.hex.prefix(16))")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(Runtime(challenge: challenge, contract: contractID.hex, keys: [jwk])))
    }

    /// A clean room refusal as an error that crosses the boundary: the code's name leads the reason.
    static func crossing(_ error: CleanRoomError) -> EnclaveError {
        let reason = "\(error.code): \(error.reason)"
        switch error.code {
        case .badSignature, .notAParty: return .invalidSignature(reason)
        case .limitExceeded: return .limitExceeded(reason)
        case .malformed, .nonCanonical, .unknownField, .invalidContract: return .malformedInput(reason)
        default: return .callFailed(reason)
        }
    }
}
