/// Where and why a policy does not parse.
public struct PolicySyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    /// At most 512 characters of the message (messages quote input; the parser quotes at most 64 of a token).
    public var description: String { "policy line \(line), column \(column): \(message.prefix(512))" }
}
