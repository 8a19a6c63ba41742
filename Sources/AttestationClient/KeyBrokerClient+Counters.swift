internal import AttestationAPI
internal import Foundation

extension KeyBrokerClient {
    /// A clean room's rollback counter as the broker answers it (`GET /counters/{contract}`,
    /// `POST /counters/{contract}/increment`): signed by the broker enclave's release signing key over the contract,
    /// value, state digest and the caller's nonce. The client checks nothing: the clean room enclave verifies it.
    public struct CounterAnswer: Codable, Hashable, Sendable {
        /// The contract ID (64 lower-case hex characters).
        public var contract: String
        /// The counter's value.
        public var value: UInt64
        /// The state digest recorded with it (empty at 0).
        public var state: String
        /// The caller's nonce.
        public var nonce: String
        /// The broker's ES256 signature, raw `r ‖ s`, base64url.
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

    private struct CounterIncrement: Encodable {
        var nonce: String
        var expected: UInt64
        var state: String
    }

    /// `GET /counters/{contract}?nonce=`: the counter's value (no credential: it is not secret).
    /// - Throws: ``AttestationClient/Failure`` with the broker's code (`NoCounter`, `BadParameter`, `HTTP404` when
    ///   the broker serves no counters, …).
    public func counter(contract: String, nonce: String) async throws -> CounterAnswer {
        let response = try await raw(
            .GET,
            "counters/\(contract)",
            body: nil,
            admin: false,
            query: [URLQueryItem(name: "nonce", value: nonce)]
        )
        return try decode(CounterAnswer.self, response, what: "the counter answer does not decode")
    }

    /// `POST /counters/{contract}/increment` from `expected`, recording `state`, with the clean room's attestation
    /// `token` as `Authorization: Bearer`.
    /// - Throws: ``AttestationClient/Failure`` with the broker's code (`CounterNotAllowed`, `CounterConflict`, the
    ///   token's refusal, …).
    public func incrementCounter(
        contract: String,
        nonce: String,
        expected: UInt64,
        state: String,
        token: String
    ) async throws -> CounterAnswer {
        let body = try WireJSON.encode(CounterIncrement(nonce: nonce, expected: expected, state: state))
        let response = try await raw(
            .POST,
            "counters/\(contract)/increment",
            body: Data(body),
            admin: false,
            bearer: token
        )
        return try decode(CounterAnswer.self, response, what: "the counter answer does not decode")
    }
}
