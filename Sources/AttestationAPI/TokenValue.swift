internal import Foundation

/// A JSON value of the wire: token claims (strings, numbers, booleans, the parsed runtime data object, arrays of
/// advisory IDs), JWT headers, and the members of request and response documents that may hold any JSON.
///
/// It is the one public JSON value model of the service and its client. (The `Attestation` module parses collateral
/// with its own internal, allocation-light reader, and a policy claim's value is limited to the scalars the policy
/// language compares.) JSON text is always written by `JSONEncoder` (``jsonText``), never by hand.
public enum TokenValue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A JSON string.
    case string(String)
    /// A JSON number that is a whole number and fits in `Int`.
    case integer(Int)
    /// Any other JSON number.
    case double(Double)
    /// A JSON boolean.
    case bool(Bool)
    /// A JSON array.
    case array([TokenValue])
    /// A JSON object.
    case object([String: TokenValue])
    /// JSON `null`.
    case null

    /// Decodes any JSON value (booleans before numbers, integers before doubles).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([TokenValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: TokenValue].self))
        }
    }

    /// Encodes the value as the JSON value it is.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    /// The value as text: strings bare, everything else as its JSON text (``jsonText``).
    public var description: String {
        if case .string(let value) = self { return value }
        return jsonText
    }

    /// The value as JSON text (strings quoted and escaped, object members in key order), written by
    /// ``WireJSON/encoder``.
    public var jsonText: String {
        String(decoding: (try? WireJSON.encode(self)) ?? Array("null".utf8), as: UTF8.self)
    }

    /// The string, if this is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, if this is one.
    public var integerValue: Int? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The boolean, if this is one.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
}
