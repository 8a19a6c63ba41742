/// A key's attributes, as Key Vault's `KeyAttributes`: whether it may be used, when it was made and changed, whether it
/// may leave the broker (by release only), how deletion can be undone, and who brought the version in (``origin``, the
/// broker's own member). Times are Unix seconds. In a request only `enabled`, `exportable`, `nbf` and `exp` are read;
/// the broker sets the others.
public struct KeyAttributes: Codable, Hashable, Sendable {
    /// Whether the key may be used (released, unwrapped with).
    public var enabled: Bool?
    /// Not usable before this time.
    public var nbf: Int64?
    /// Not usable after this time.
    public var exp: Int64?
    /// When the version was created.
    public var created: Int64?
    /// When the version last changed.
    public var updated: Int64?
    /// Whether the private key may be released (only to a token satisfying the release policy).
    public var exportable: Bool?
    /// Days a deleted key stays recoverable.
    public var recoverableDays: Int?
    /// Key Vault's deletion recovery level: `Recoverable+Purgeable` (soft delete, then purge or recover).
    public var recoveryLevel: String?
    /// Who brought the version in (the owner's import under a release policy, or the administrator); `nil` in
    /// versions stored before the broker recorded it.
    public var origin: KeyOrigin?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled, nbf, exp, created, updated, exportable, recoverableDays, recoveryLevel, origin
    }

    /// Attributes with the members given (absent ones are left out of the JSON).
    public init(
        enabled: Bool? = nil,
        nbf: Int64? = nil,
        exp: Int64? = nil,
        created: Int64? = nil,
        updated: Int64? = nil,
        exportable: Bool? = nil,
        recoverableDays: Int? = nil,
        recoveryLevel: String? = nil,
        origin: KeyOrigin? = nil
    ) {
        self.enabled = enabled
        self.nbf = nbf
        self.exp = exp
        self.created = created
        self.updated = updated
        self.exportable = exportable
        self.recoverableDays = recoverableDays
        self.recoveryLevel = recoveryLevel
        self.origin = origin
    }

    /// Reads the attributes, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled)
        nbf = try container.decodeIfPresent(Int64.self, forKey: .nbf)
        exp = try container.decodeIfPresent(Int64.self, forKey: .exp)
        created = try container.decodeIfPresent(Int64.self, forKey: .created)
        updated = try container.decodeIfPresent(Int64.self, forKey: .updated)
        exportable = try container.decodeIfPresent(Bool.self, forKey: .exportable)
        recoverableDays = try container.decodeIfPresent(Int.self, forKey: .recoverableDays)
        recoveryLevel = try container.decodeIfPresent(String.self, forKey: .recoveryLevel)
        origin = try container.decodeIfPresent(KeyOrigin.self, forKey: .origin)
    }
}
