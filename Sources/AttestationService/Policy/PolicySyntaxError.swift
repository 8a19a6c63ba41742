/// Where and why a policy does not parse.
public struct PolicySyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The line of the offending token, counted from 1.
    public var line: Int
    /// The column of the offending token, counted from 1 (in Unicode scalars of the line).
    public var column: Int
    /// What is wrong there. It may quote the policy text (at most 64 characters of a token), which the policy's author
    /// wrote: show it to that author, not as trusted text.
    public var message: String
    /// At most 512 characters of the message (messages quote input; the parser quotes at most 64 of a token).
    public var description: String { "policy line \(line), column \(column): \(message.prefix(512))" }
}
