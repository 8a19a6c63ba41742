/// Refusal of members a request type does not know: a Key Vault-shaped request with a misspelt member
/// (`"exportible": true`) must not be read as one without it. Request types call ``refuse(in:allowed:)`` first in
/// their `init(from:)`.
public enum StrictMembers {
    /// Any member name, for listing what an object holds.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Throws `DecodingError.dataCorrupted` naming the first member of the object `decoder` reads that is not in
    /// `allowed` (sorted, so the message is stable).
    public static func refuse<Key: CodingKey & CaseIterable>(in decoder: any Decoder, allowed: Key.Type) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(Key.allCases.map(\.stringValue))
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        if let first = unknown.first {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath + [AnyKey(stringValue: first)],
                    debugDescription: "unknown member \"\(first.prefix(64))\"; known: "
                        + known.sorted().joined(separator: ", ")
                )
            )
        }
    }
}
