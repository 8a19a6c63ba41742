/// A JSON Web Key Set: `{"keys": […]}`.
public struct JSONWebKeySet: Codable, Hashable, Sendable {
    /// The keys.
    public var keys: [JSONWebKey]

    /// A set of `keys`.
    public init(keys: [JSONWebKey]) { self.keys = keys }
}
