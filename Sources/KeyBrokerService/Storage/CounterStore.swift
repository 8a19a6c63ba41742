public import KeyBrokerInterface

/// Where the key broker's host keeps clean rooms' rollback counters (one record per contract), apart from the key
/// store (``KeyBrokerStore``) so that its backends are untouched.
///
/// The host is not trusted with the counter's meaning: the broker enclave decides every move and signs every answer.
/// A host that rolled a record back makes the clean room refuse its state (fail closed); only a clean room host and a
/// broker host acting together could hide a rollback.
public protocol CounterStore: Sendable {
    /// The record of `contract`, or nil if it was never incremented.
    func counter(contract: String) async throws -> BrokerCounterRecord?
    /// Replace `contract`'s record by `record` if it is still at `expected` (0: no record yet); false otherwise
    /// (another increment won).
    func replaceCounter(contract: String, expected: UInt64, with record: BrokerCounterRecord) async throws -> Bool
}
