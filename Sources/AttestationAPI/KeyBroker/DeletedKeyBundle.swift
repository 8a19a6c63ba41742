/// A soft-deleted key as Key Vault answers it (`DeletedKeyBundle`): its latest version's bundle, when it was deleted,
/// when it would be purged, and the `recoveryId` to recover it with (`POST /deletedkeys/{name}/recover`).
public struct DeletedKeyBundle: Codable, Hashable, Sendable {
    /// The latest version's public part.
    public var key: KeyBrokerWebKey
    /// Its attributes.
    public var attributes: KeyAttributes
    /// Its release policy.
    public var releasePolicy: KeyReleasePolicy?
    /// Tags.
    public var tags: [String: String]?
    /// `https://{broker}/deletedkeys/{name}`.
    public var recoveryId: String
    /// When it was deleted, Unix seconds.
    public var deletedDate: Int64
    /// When the broker may purge it, Unix seconds.
    public var scheduledPurgeDate: Int64

    enum CodingKeys: String, CodingKey {
        case key, attributes, tags, recoveryId, deletedDate, scheduledPurgeDate
        case releasePolicy = "release_policy"
    }

    /// A deleted bundle from `bundle` with its deletion data.
    public init(bundle: KeyBundle, recoveryId: String, deletedDate: Int64, scheduledPurgeDate: Int64) {
        key = bundle.key
        attributes = bundle.attributes
        releasePolicy = bundle.releasePolicy
        tags = bundle.tags
        self.recoveryId = recoveryId
        self.deletedDate = deletedDate
        self.scheduledPurgeDate = scheduledPurgeDate
    }
}
