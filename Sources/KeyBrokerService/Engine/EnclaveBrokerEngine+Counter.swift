internal import EnclaveHost
public import KeyBrokerInterface

extension EnclaveBrokerEngine {
    /// `BrokerCounter`: a clean room's rollback counter, decided and signed in the broker enclave.
    public func counter(_ request: BrokerCounterRequest) async throws -> BrokerCounterResponse {
        try await enclave.call(BrokerCounter.self, request)
    }
}
