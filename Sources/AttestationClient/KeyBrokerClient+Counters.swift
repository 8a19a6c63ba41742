public import AttestationAPI
internal import EnclaveCore
internal import Foundation

extension KeyBrokerClient {
    /// `GET /counters/{contract}?nonce=`: the counter's value (no credential: it is not secret).
    /// - Throws: ``AttestationClient/Failure`` with the broker's code (`NoCounter`, `BadParameter`, `HTTP404` when
    ///   the broker serves no counters, …).
    public func counter(contract: String, nonce: String) async throws -> RollbackCounterAnswer {
        let response = try await raw(
            .GET,
            "counters/\(contract)",
            body: nil,
            admin: false,
            query: [URLQueryItem(name: "nonce", value: nonce)]
        )
        return try decode(RollbackCounterAnswer.self, response, what: "the counter answer does not decode")
    }

    /// `POST /counters/{contract}/increment` from `expected`, recording `state`, with the clean room's attestation
    /// `token` as `Authorization: Bearer` and the contract's canonical bytes `document` (the broker moves the counter
    /// only for a token of the enclave the contract names; nil sends none, which the broker refuses) and the clean room
    /// enclave's `signature` over the increment (raw r‖s, with the `counterRequestKey` the token binds; nil sends none,
    /// which the broker refuses).
    /// - Throws: ``AttestationClient/Failure`` with the broker's code (`CounterNotAllowed`, `CounterConflict`, the
    ///   token's refusal, …).
    public func incrementCounter(
        contract: String,
        nonce: String,
        expected: UInt64,
        state: String,
        token: String,
        document: [UInt8]?,
        signature: [UInt8]? = nil
    ) async throws -> RollbackCounterAnswer {
        let body = try WireJSON.encode(
            RollbackCounterIncrement(
                nonce: nonce,
                expected: expected,
                state: state,
                contract: document.map { Base64URL.encode($0) },
                signature: signature.map { Base64URL.encode($0) }
            )
        )
        let response = try await raw(
            .POST,
            "counters/\(contract)/increment",
            body: Data(body),
            admin: false,
            bearer: token
        )
        return try decode(RollbackCounterAnswer.self, response, what: "the counter answer does not decode")
    }
}
