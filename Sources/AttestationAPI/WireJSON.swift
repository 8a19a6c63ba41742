public import Foundation

/// How the service and its clients write and read the wire's JSON: `JSONEncoder` with sorted keys (the same value
/// always gives the same bytes: tokens, hashes and tests depend on it) and unescaped slashes (URLs and base64 stay
/// readable), `JSONDecoder` with its defaults.
public enum WireJSON {
    /// A new encoder with the wire's settings (sorted keys, slashes unescaped).
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `value` as the wire's JSON bytes.
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        Array(try encoder.encode(value))
    }

    /// `value` as the wire's JSON text.
    public static func string(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// A `T` decoded from `bytes`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Sequence<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
