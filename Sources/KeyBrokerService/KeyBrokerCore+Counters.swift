internal import AttestationAPI
internal import AttestationService
internal import EnclaveCore
internal import Foundation
internal import KeyBrokerInterface

extension KeyBrokerCore {
    /// A rollback counter answer on the wire (`GET /counters/{contract}`, `POST /counters/{contract}/increment`).
    public struct CounterAnswer: Codable, Hashable, Sendable {
        /// The contract ID.
        public var contract: String
        /// The counter's value.
        public var value: UInt64
        /// The state digest recorded with it (empty at 0).
        public var state: String
        /// The caller's nonce.
        public var nonce: String
        /// The broker's ES256 signature (raw r‖s, base64url) over `BrokerCounterRequest.message`.
        public var signature: String

        /// Creates one from its members, each as documented on its property.
        public init(contract: String, value: UInt64, state: String, nonce: String, signature: String) {
            self.contract = contract
            self.value = value
            self.state = state
            self.nonce = nonce
            self.signature = signature
        }
    }

    /// What `POST /counters/{contract}/increment` takes (the token is the `Authorization: Bearer` credential).
    public struct CounterIncrement: Codable, Hashable, Sendable {
        /// The clean room enclave's nonce.
        public var nonce: String
        /// The value the counter must be at.
        public var expected: UInt64
        /// The new state's SHA-256, lower-case hex.
        public var state: String

        /// Creates one from its members, each as documented on its property.
        public init(nonce: String, expected: UInt64, state: String) {
            self.nonce = nonce
            self.expected = expected
            self.state = state
        }
    }

    /// Read (`increment` nil) or increment `contract`'s rollback counter in `store`: the broker enclave verifies
    /// `token` and decides (see `KeyBroker.counter`); the host stores an incremented record by compare-and-swap.
    /// Refusals: 400 `BadParameter`, 401 with the token's refusal code, 403 `CounterNotAllowed`, 409
    /// `CounterConflict`.
    public func counter(
        contract: String,
        token: String,
        nonce: String,
        increment: CounterIncrement?,
        store: any CounterStore
    ) async throws -> CounterAnswer {
        guard token.utf8.count <= Self.maximumTokenSize else {
            throw ServiceError.badRequest("BadParameter", "the token is larger than \(Self.maximumTokenSize) bytes")
        }
        guard let engine = engine as? EnclaveBrokerEngine else {
            throw ServiceError(status: .notImplemented, code: "NoCounter", message: "this broker keeps no counters")
        }
        let current = try await store.counter(contract: contract)
        let request = BrokerCounterRequest(
            token: token,
            operation: increment == nil ? "read" : "increment",
            contract: contract,
            nonce: increment?.nonce ?? nonce,
            expected: increment?.expected ?? 0,
            state: increment?.state ?? "",
            current: current
        )
        let response: BrokerCounterResponse
        do {
            response = try await engine.counter(request)
        } catch let error as EnclaveError {
            let code = String(error.reason.prefix { $0.isLetter })
            let message = String(error.reason.prefix(500))
            switch code {
            case "BadParameter": throw ServiceError.badRequest(code, message)
            case "CounterNotAllowed": throw ServiceError(status: .forbidden, code: code, message: message)
            case "CounterConflict": throw ServiceError(status: .conflict, code: code, message: message)
            default: throw ServiceError.unauthorized(code.isEmpty ? "Unauthorized" : code, message)
            }
        }
        if let increment {
            guard
                try await store.replaceCounter(contract: contract, expected: increment.expected, with: response.record)
            else {
                throw ServiceError(
                    status: .conflict,
                    code: "CounterConflict",
                    message: "the counter moved from \(increment.expected) meanwhile"
                )
            }
        }
        return CounterAnswer(
            contract: contract,
            value: response.record.value,
            state: response.record.state,
            nonce: response.nonce,
            signature: Base64URL.encode(response.signature)
        )
    }
}
