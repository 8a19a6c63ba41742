public import Foundation

/// Anonymous release refusals, counted: how many releases of one key were refused with one code in one minute.
///
/// A refusal before the broker enclave (a bad or unknown key name, a disabled key, an oversize target) or one for a
/// token the enclave did not verify comes from a client nobody has authenticated: it is counted here, in a bounded
/// table (`KeyBrokerCore.Configuration`'s `refusalRetention` and `maxRefusalRecords`),
/// not appended to the audit log one row per request, and nothing of the unverified token is kept. Granted releases,
/// refusals of verified tokens and administrator actions stay individual, append-only audit records.
public struct KeyBrokerRefusalCount: Codable, Sendable, Equatable, Hashable {
    /// The minute (Unix time divided by 60).
    public var minute: Int64
    /// The key's name when the key exists; ``unknownKey`` for a bad or unknown name.
    public var key: String
    /// The refusal's error code (at most ``maximumCodeLength`` characters).
    public var code: String
    /// How many releases were refused so.
    public var count: Int64

    /// The key name recorded for a refusal of a name that is invalid or names no key.
    public static let unknownKey = "-"
    /// The longest code recorded.
    public static let maximumCodeLength = 64

    /// A count; `code` is cut to ``maximumCodeLength`` characters.
    public init(minute: Int64, key: String, code: String, count: Int64) {
        self.minute = minute
        self.key = key
        self.code = String(code.prefix(Self.maximumCodeLength))
        self.count = count
    }

    /// The minute of `date`.
    public static func minute(of date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 60).rounded(.down)) }
}

/// Anonymous release refusals, newest first (`GET /audit/refusals`, administrators).
public struct KeyBrokerRefusalLog: Codable, Sendable, Equatable {
    /// The counts.
    public var value: [KeyBrokerRefusalCount]

    /// A log of `value`.
    public init(value: [KeyBrokerRefusalCount]) { self.value = value }
}
