/// Why a wrapped key could not be made or opened: the rule broken (``code``) and a message without key bytes.
public struct KeyReleaseFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rule broken; an open set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The bytes or text are not in the expected format (lengths, encodings, JSON members).
        public static let malformed = Code("malformed")
        /// An integrity check failed: the AES key wrap's check value, AES-GCM's tag, RSA-OAEP's padding.
        public static let integrity = Code("integrity")
        /// The algorithm, curve or key is not one this format supports.
        public static let unsupported = Code("unsupported")
        /// An RSA key is shorter than 2048 bits.
        public static let weakKey = Code("weak key")
    }

    /// The rule broken.
    public let code: Code
    /// What is wrong, for people (never key bytes).
    public let reason: String

    /// An error with a code and a reason.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    static func malformed(_ reason: String) -> Self { Self(.malformed, reason) }
    static func integrity(_ reason: String) -> Self { Self(.integrity, reason) }
    static func unsupported(_ reason: String) -> Self { Self(.unsupported, reason) }

    /// `code: reason`.
    public var description: String { "\(code): \(reason)" }
}
