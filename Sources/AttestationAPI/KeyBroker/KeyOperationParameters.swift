/// The body of `POST /keys/{name}/{version}/unwrapkey` and `…/wrapkey` (Key Vault's `KeyOperationsParameters`): the
/// algorithm and the data key (wrapped or not), base64url. Administrators only; the operation runs inside the broker
/// enclave.
public struct KeyOperationParameters: Codable, Hashable, Sendable {
    /// `RSA-OAEP-256` (RSA keys) or `A256KW` (AES keys, RFC 3394).
    public var alg: String
    /// The data key (wrapped for `unwrapkey`), base64url.
    public var value: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case alg, value
    }

    /// Parameters with the members given.
    public init(alg: String, value: String) {
        self.alg = alg
        self.value = value
    }

    /// Reads the parameters, refusing unknown members.
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        alg = try container.decode(String.self, forKey: .alg)
        value = try container.decode(String.self, forKey: .value)
    }
}
