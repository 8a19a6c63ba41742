/// The body of `POST /keys/{name}/{version}/unwrapkey` (Key Vault's `KeyOperationsParameters`): the algorithm and the
/// wrapped data key, base64url. Administrators only; the private-key operation runs inside the broker enclave.
public struct KeyOperationParameters: Codable, Hashable, Sendable {
    /// `RSA-OAEP-256` (RSA keys) or `ECDH-ES+A256KW` (EC keys; `value` is then a compact JWE).
    public var alg: String
    /// The wrapped key, base64url (or the compact JWE for `ECDH-ES+A256KW`).
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
