/// A key's release policy on the wire, as Key Vault's `KeyReleasePolicy`: the policy document (Key Vault's grammar,
/// see the `KeyBroker` module's `ReleasePolicy`) base64url-encoded in `data`, its content type, and whether it can
/// never change again.
public struct KeyReleasePolicy: Codable, Hashable, Sendable {
    /// The content type of `data`; `application/json; charset=utf-8` (the only one accepted).
    public var contentType: String?
    /// The policy document, base64url (no padding).
    public var data: String
    /// Whether the policy is fixed for the life of the key version: `PUT …/releasepolicy` is then refused.
    public var immutable: Bool?

    /// The content type the broker accepts and answers.
    public static let jsonContentType = "application/json; charset=utf-8"

    enum CodingKeys: String, CodingKey, CaseIterable {
        case contentType, data, immutable
    }

    /// A policy whose document is `data` (base64url).
    public init(contentType: String? = jsonContentType, data: String, immutable: Bool? = nil) {
        self.contentType = contentType
        self.data = data
        self.immutable = immutable
    }

    /// Reads the policy, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        contentType = try container.decodeIfPresent(String.self, forKey: .contentType)
        data = try container.decode(String.self, forKey: .data)
        immutable = try container.decodeIfPresent(Bool.self, forKey: .immutable)
    }
}
