/// The answer to `GET /audit`: the newest records first.
public struct KeyBrokerAuditLog: Codable, Hashable, Sendable {
    /// The records, newest first.
    public var value: [KeyBrokerAuditEntry]

    /// A log of `value`.
    public init(value: [KeyBrokerAuditEntry]) { self.value = value }
}
