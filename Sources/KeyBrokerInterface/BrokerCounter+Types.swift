public import EnclaveCore

/// ECALL: a clean room's rollback counter (one per contract). The broker enclave verifies the attestation token
/// (as for releases: a trusted authority's signature, times), that its `x-ms-runtime` names the contract and this
/// broker's signing key as `counterKey`, and that its enclave is the one the contract names
/// (``BrokerCounterRequest/contractDocument``); for `increment` the request must also be signed by the clean room
/// enclave's counter request key, bound in the same runtime data (``BrokerCounterRequest/requestSignature``), and the
/// counter must be at `expected`. It answers the new (or
/// current) record signed with the broker's signing key over the contract, value, state digest and the caller's
/// nonce. The host keeps the records (``BrokerCounterRequest/current``) and stores the answer's record.
public enum BrokerCounter: EnclaveCall {
    public typealias Input = BrokerCounterRequest
    public typealias Output = BrokerCounterResponse
    public static var name: String { "keybroker.counter" }
}

/// A counter's value and the state digest recorded with it.
public struct BrokerCounterRecord: Codable, Hashable, Sendable {
    /// The value (0: never incremented).
    public var value: UInt64
    /// SHA-256 (lower-case hex) of the state counted at ``value``; empty at 0.
    public var state: String

    /// Creates one from its members, each as documented on its property.
    public init(value: UInt64, state: String) {
        self.value = value
        self.state = state
    }
}

/// What ``BrokerCounter`` takes.
public struct BrokerCounterRequest: Codable, Hashable, Sendable {
    /// The clean room's attestation token (JWT).
    public var token: String
    /// `read` or `increment`.
    public var operation: String
    /// The contract ID (64 lower-case hex characters).
    public var contract: String
    /// The clean room enclave's nonce (16 to 128 characters of `[0-9a-zA-Z_-]`).
    public var nonce: String
    /// `increment`: the value the counter must be at.
    public var expected: UInt64
    /// `increment`: the new state's digest (64 lower-case hex characters).
    public var state: String
    /// The record the host keeps for the contract (nil: none yet).
    public var current: BrokerCounterRecord?
    /// `increment`: the contract's canonical bytes (SHA-256 of them is ``contract``); the token's enclave must be the
    /// one they name (signer, product, minimum security version, not debuggable). Nil: the increment is refused.
    public var contractDocument: [UInt8]?
    /// `increment`: the clean room enclave's ES256 signature (raw r‖s) over
    /// ``incrementMessage(contract:expected:state:nonce:)``, by the key the token's `x-ms-runtime.counterRequestKey`
    /// binds. The token and the contract are public (anyone can have the genuine enclave's published evidence
    /// attested); only the enclave holds this key, so only it chooses what the counter records. Nil: the increment is
    /// refused (`CounterNotAllowed`).
    public var requestSignature: [UInt8]?

    /// Creates one from its members, each as documented on its property.
    public init(
        token: String,
        operation: String,
        contract: String,
        nonce: String,
        expected: UInt64 = 0,
        state: String = "",
        current: BrokerCounterRecord?,
        contractDocument: [UInt8]? = nil,
        requestSignature: [UInt8]? = nil
    ) {
        self.token = token
        self.operation = operation
        self.contract = contract
        self.nonce = nonce
        self.expected = expected
        self.state = state
        self.current = current
        self.contractDocument = contractDocument
        self.requestSignature = requestSignature
    }

    /// What the clean room enclave signs for an increment (``requestSignature``): `EnclaveKit.counter.increment.v1`
    /// and a zero byte, then the contract ID, `expected` (8 bytes, big-endian), the state digest and the nonce, each
    /// string preceded by its UTF-8 length (4 bytes, big-endian), so no two requests share a message. Built by
    /// EnclaveCore's `RollbackCounterMessage.increment`, as the clean room enclave builds it
    /// (`CleanRoomCounterRequest.incrementMessage`).
    public static func incrementMessage(contract: String, expected: UInt64, state: String, nonce: String) -> [UInt8] {
        RollbackCounterMessage.increment(contract: contract, expected: expected, state: state, nonce: nonce)
    }

    /// What the broker signs: `EnclaveKit.rollbackCounter.v1`, then `contract=`, `value=`, `state=` and `nonce=`
    /// lines. Built by EnclaveCore's `RollbackCounterMessage.answer`, as the clean room enclave builds the text it
    /// verifies (`CleanRoomCounterRequest.message`).
    public static func message(contract: String, value: UInt64, state: String, nonce: String) -> [UInt8] {
        RollbackCounterMessage.answer(contract: contract, value: value, state: state, nonce: nonce)
    }
}

/// What ``BrokerCounter`` answers.
public struct BrokerCounterResponse: Codable, Hashable, Sendable {
    /// The record after the operation (for the host to store after an increment).
    public var record: BrokerCounterRecord
    /// The request's nonce.
    public var nonce: String
    /// ES256 (raw r‖s) by the broker's signing key over ``BrokerCounterRequest/message(contract:value:state:nonce:)``.
    public var signature: [UInt8]

    /// Creates one from its members, each as documented on its property.
    public init(record: BrokerCounterRecord, nonce: String, signature: [UInt8]) {
        self.record = record
        self.nonce = nonce
        self.signature = signature
    }
}
