public import EnclaveCore

/// The bytes a runner signs (ES256) to ask the clean room to run an approved query.
///
/// `EnclaveKit.cleanroom.query.v1`, a zero byte, then the canonical JSON of `{"contract": <hex ID>, "nonce",
/// "parameters": {name: "type:value"}, "query", "runner"}`. The contract ID binds the request to one contract; the
/// nonce (fresh per request) lets the clean room refuse a replayed request.
public enum QueryRequestSigning {
    static let domain = Array("EnclaveKit.cleanroom.query.v1".utf8) + [0]

    /// The message signed for these fields.
    public static func message(
        contractID: Digest32,
        queryID: String,
        runner: String,
        parameters: [String: String],
        nonce: String
    ) -> [UInt8] {
        domain
            + CanonicalJSON.object([
                "contract": .string(contractID.hex),
                "query": .string(queryID),
                "runner": .string(runner),
                "parameters": .object(parameters.mapValues { .string($0) }),
                "nonce": .string(nonce),
            ]).canonicalBytes
    }

    /// A parameter value as `type:value` text (`integer:5`, `real:1.5`, `text:abc`, `null:`), the form requests and
    /// receipts carry.
    public static func text(_ value: SQLValue) -> String { Receipt.text(value) }

    /// Parse `type:value` text; nil when the type is unknown or the value does not parse as it.
    public static func value(_ text: String) -> SQLValue? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let value = String(text[text.index(after: colon)...])
        switch text[..<colon] {
        case "null": return value.isEmpty ? .null : nil
        case "integer": return Int64(value).map(SQLValue.integer)
        case "real":
            guard let number = Double(value), number.isFinite else { return nil }
            return .real(number)
        case "text": return .text(value)
        default: return nil
        }
    }
}
