public import AttestationAPI
internal import AttestationService
internal import EnclaveCore
internal import Foundation
internal import KeyBrokerInterface

extension KeyBrokerCore {
    /// Read (`increment` nil) or increment `contract`'s rollback counter in `store`: the broker enclave verifies
    /// `token` and decides (see `KeyBroker.counter`: the token's enclave must be the one the increment's contract
    /// document names, and the increment signed by the key its runtime data binds as `counterRequestKey`); the host
    /// stores an incremented record by compare-and-swap.
    /// Refusals: 400 `BadParameter`, 401 with the token's refusal code, 403 `CounterNotAllowed`, 409
    /// `CounterConflict`.
    public func counter(
        contract: String,
        token: String,
        nonce: String,
        increment: RollbackCounterIncrement?,
        store: any CounterStore
    ) async throws -> RollbackCounterAnswer {
        guard token.utf8.count <= Self.maximumTokenSize else {
            throw ServiceError.badRequest("BadParameter", "the token is larger than \(Self.maximumTokenSize) bytes")
        }
        guard let engine = engine as? EnclaveBrokerEngine else {
            throw ServiceError(status: .notImplemented, code: "NoCounter", message: "this broker keeps no counters")
        }
        var document: [UInt8]?
        if let encoded = increment?.contract {
            // Base64url of at most 1 MiB (the largest contract), checked before decoding.
            guard encoded.utf8.count <= ((1 << 20) * 4 + 2) / 3, let bytes = Base64URL.decode(encoded) else {
                throw ServiceError.badRequest(
                    "BadParameter",
                    "the increment's contract is not base64url of at most 1 MiB"
                )
            }
            document = bytes
        }
        var signature: [UInt8]?
        if let encoded = increment?.signature {
            // Base64url of an ES256 signature (raw r‖s): 64 bytes, 86 characters.
            guard encoded.utf8.count <= 128, let bytes = Base64URL.decode(encoded) else {
                throw ServiceError.badRequest("BadParameter", "the increment's signature is not base64url")
            }
            signature = bytes
        }
        let current = try await store.counter(contract: contract)
        let request = BrokerCounterRequest(
            token: token,
            operation: increment == nil ? "read" : "increment",
            contract: contract,
            nonce: increment?.nonce ?? nonce,
            expected: increment?.expected ?? 0,
            state: increment?.state ?? "",
            current: current,
            contractDocument: document,
            requestSignature: signature
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
        return RollbackCounterAnswer(
            contract: contract,
            value: response.record.value,
            state: response.record.state,
            nonce: response.nonce,
            signature: Base64URL.encode(response.signature)
        )
    }
}
