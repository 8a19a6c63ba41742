public import KeyBrokerInterface

/// Why the broker refused: a stable code (the `BrokerRefusal.Code` strings for release refusals, plus the
/// management codes here) and a message naming the failed check (never key bytes or claim values).
public struct KeyBrokerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable code.
    public let code: String
    /// What failed, for people.
    public let reason: String

    /// An error with a code and a reason.
    public init(_ code: String, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The request is not usable (a name too long, a policy missing for an exportable key, a wrong key type).
    public static let invalidRequest = "InvalidRequest"
    /// The key's release policy is immutable.
    public static let policyImmutable = "PolicyImmutable"
    /// The imported key does not unwrap with the import key, or is not the declared type.
    public static let importRefused = "ImportRefused"
    /// The imported key's wrapped payload does not carry the owner's import intent (the `EKI1` prefix and digest).
    public static let importIntentMissing = "ImportIntentMissing"
    /// The import request's name, type, operations, attributes or release policy, or the broker's current authority
    /// pins, differ from what the owner bound into the wrapped payload (a replay or a broker trusting another
    /// certificate).
    public static let importIntentMismatch = "ImportIntentMismatch"
    /// The key's operations (as its envelope binds them) do not include the one asked for: an unwrap needs
    /// `unwrapKey` or `decrypt`, a wrap `wrapKey` or `encrypt`. A key imported under a release policy leaves out
    /// `unwrapKey` and `decrypt` unless its owner named them, so the broker's administrator can't unwrap its data keys.
    public static let keyOperationNotAllowed = "KeyOperationNotAllowed"
    /// The keyring does not open (another broker's, tampered, or from a newer broker).
    public static let keyringInvalid = "KeyringInvalid"
    /// The keyring was joined under a granter token signed by an authority certificate this broker is not opened
    /// trusting now: a keyring the newcomer's host could have made and attested with a certificate of its own opens
    /// only while that certificate stays in the list the broker's evidence binds (where clients see it).
    public static let keyringAuthorityNotTrusted = "KeyringAuthorityNotTrusted"
    /// The sealed keyring is of an older format that does not record which certificate it was joined under.
    public static let keyringOutdated = "KeyringOutdated"

    /// The refusal the release ECALL answers.
    public var refusal: BrokerRefusal { BrokerRefusal(code: code, message: reason) }

    /// `code: reason`.
    public var description: String { "\(code): \(reason)" }
}
