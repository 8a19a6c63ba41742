public import JWTKit

/// A JSON value inside an attestation token: tokens carry claims of every JSON type (strings, numbers, booleans,
/// the parsed runtime data object, arrays of advisory IDs).
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

    /// The value as Foundation-free text: strings bare, everything else as JSON would spell it.
    public var description: String {
        switch self {
        case .string(let value): value
        case .integer(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): String(value)
        case .array(let values): "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value.jsonText)" }.joined(separator: ",")
                + "}"
        case .null: "null"
        }
    }

    /// The value as JSON text (strings quoted and escaped).
    public var jsonText: String {
        if case .string(let value) = self {
            var escaped = ""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case _ where scalar.value < 0x20:
                    escaped += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return "\"" + escaped + "\""
        }
        return description
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

/// The claims of an attestation token, as a JWT payload (flat JSON object).
public struct AttestationTokenClaims: JWTPayload, Hashable {
    /// Every claim of the payload by name (`x-ms-attestation-type`, `x-ms-sgx-mrenclave`, `iss`, `exp`, …).
    public var claims: [String: TokenValue]

    /// Claims from a dictionary (for tests and for signing); a received token's claims come from ``TokenVerifier``.
    public init(_ claims: [String: TokenValue]) { self.claims = claims }

    public init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: TokenValue].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    /// Time and issuer checks are the verifier's (``TokenVerifier``), with its clock and skew.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}

    /// The claim named `name`, or `nil` when the token has none.
    public subscript(_ name: String) -> TokenValue? { claims[name] }
}
