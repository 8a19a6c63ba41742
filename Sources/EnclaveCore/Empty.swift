/// An empty value, for calls that take or return nothing.
public struct Empty: Codable, Hashable, Sendable {
    /// Create the empty value; it encodes to zero bytes.
    public init() {}
}
