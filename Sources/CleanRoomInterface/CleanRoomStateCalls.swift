public import EnclaveCore

// The clean room's durable state (privacy budget ledger and receipt chain head), sealed by the enclave and kept by
// the untrusted host. The host only stores bytes it can't read or forge; restoring an older copy is what the
// rollback counter catches.

/// OCALL: the host answers the last sealed state saved for a contract (``CleanRoomStateBlob/blob`` empty: none).
public enum CleanRoomLoadState: EnclaveCall {
    public typealias Input = CleanRoomStateBlob
    public typealias Output = CleanRoomStateBlob
    public static var name: String { "cleanroom.loadState" }
}

/// OCALL: the host replaces the sealed state kept for a contract, durably (written and synced before it answers).
public enum CleanRoomSaveState: EnclaveCall {
    public typealias Input = CleanRoomStateBlob
    public typealias Output = Empty
    public static var name: String { "cleanroom.saveState" }
}

/// A contract's sealed state as the host keeps it (``CleanRoomLoadState``, ``CleanRoomSaveState``).
public struct CleanRoomStateBlob: Codable, Hashable, Sendable {
    /// The contract ID, lower-case hex (64 characters).
    public var contractID: String
    /// The sealed state (empty: none, in a load request and an answer for a contract with no state yet).
    public var blob: [UInt8]

    /// The largest sealed state accepted either way (1 MiB).
    public static let maxBytes = 1 << 20

    /// Creates one from its members, each as documented on its property.
    public init(contractID: String, blob: [UInt8] = []) {
        self.contractID = contractID
        self.blob = blob
    }
}

/// OCALL: the rollback counter, held by the key broker for each contract; the host carries the request there and
/// the broker's signed answer back (the host can't forge or replay one: it is signed by the broker's signing key over
/// the contract, value, state digest and the enclave's fresh nonce; see ``CleanRoomCounterRequest/message(contractID:value:state:nonce:)``).
///
/// Operations: `key` (the broker's signing public key, bound into the clean room's evidence at open), `read`, and
/// `increment` (from ``CleanRoomCounterRequest/expected`` to one more, recording the new state's digest; refused
/// when the counter is not at `expected`). A host without this OCALL has no counter: the enclave then can't detect a
/// restored older state (its evidence binds no counter key).
public enum CleanRoomCounter: EnclaveCall {
    public typealias Input = CleanRoomCounterRequest
    public typealias Output = CleanRoomCounterAnswer
    public static var name: String { "cleanroom.counter" }
}

/// What ``CleanRoomCounter`` asks.
public struct CleanRoomCounterRequest: Codable, Hashable, Sendable {
    /// `key`, `read` or `increment`.
    public var operation: String
    /// The contract ID, lower-case hex.
    public var contractID: String
    /// The enclave's fresh nonce (32 lower-case hex characters); empty for `key`.
    public var nonce: String
    /// `increment`: the value the counter must be at.
    public var expected: UInt64
    /// `increment`: SHA-256 (lower-case hex) of the state saved at `expected + 1`.
    public var state: String
    /// `increment`: the enclave's ES256 signature (raw r‖s, 64 bytes) over
    /// ``incrementMessage(contractID:expected:state:nonce:)`` with its counter request key (bound in its evidence as
    /// `counterRequestKey`); the host forwards it and the key broker moves the counter only when it verifies. Nil for
    /// `key` and `read`.
    public var requestSignature: [UInt8]?

    /// Creates one from its members, each as documented on its property.
    public init(
        operation: String,
        contractID: String,
        nonce: String = "",
        expected: UInt64 = 0,
        state: String = "",
        requestSignature: [UInt8]? = nil
    ) {
        self.operation = operation
        self.contractID = contractID
        self.nonce = nonce
        self.expected = expected
        self.state = state
        self.requestSignature = requestSignature
    }

    /// What the enclave signs for an increment: `EnclaveKit.counter.increment.v1` and a zero byte, then the contract
    /// ID, `expected` (8 bytes, big-endian), the state digest and the nonce, each string preceded by its UTF-8 length
    /// (4 bytes, big-endian). Built by EnclaveCore's `RollbackCounterMessage.increment`, the builder the key broker
    /// verifies with.
    public static func incrementMessage(contractID: String, expected: UInt64, state: String, nonce: String) -> [UInt8] {
        RollbackCounterMessage.increment(contract: contractID, expected: expected, state: state, nonce: nonce)
    }

    /// What the broker signs (ES256) for an answer: a domain line, then `contract=`, `value=`, `state=` (empty at
    /// value 0) and `nonce=` lines. Every field is hex or decimal, so the text can't be ambiguous. Built by
    /// EnclaveCore's `RollbackCounterMessage.answer`, the builder the key broker signs with.
    public static func message(contractID: String, value: UInt64, state: String, nonce: String) -> [UInt8] {
        RollbackCounterMessage.answer(contract: contractID, value: value, state: state, nonce: nonce)
    }
}

/// What ``CleanRoomCounter`` answers.
public struct CleanRoomCounterAnswer: Codable, Hashable, Sendable {
    /// The counter's value (after an increment: the new one).
    public var value: UInt64
    /// The state digest recorded with it (lower-case hex; empty at value 0).
    public var state: String
    /// The request's nonce, echoed.
    public var nonce: String
    /// The broker's ES256 signature (raw r‖s) over ``CleanRoomCounterRequest/message(contractID:value:state:nonce:)``.
    public var signature: [UInt8]
    /// `key`: the broker's signing public key (raw x‖y, 64 bytes); empty otherwise.
    public var key: [UInt8]

    /// Creates one from its members, each as documented on its property.
    public init(value: UInt64, state: String, nonce: String, signature: [UInt8], key: [UInt8] = []) {
        self.value = value
        self.state = state
        self.nonce = nonce
        self.signature = signature
        self.key = key
    }
}
