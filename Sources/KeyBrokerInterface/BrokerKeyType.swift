/// The kinds of key the broker holds.
public enum BrokerKeyType: String, Codable, Hashable, Sendable, CaseIterable {
    /// AES-256 (Key Vault `oct-HSM`, 256 bits).
    case aes256 = "oct-256"
    /// RSA 2048 (Key Vault `RSA-HSM`).
    case rsa2048 = "RSA-2048"
    /// RSA 3072 (Key Vault `RSA-HSM`).
    case rsa3072 = "RSA-3072"
    /// ECDSA/ECDH P-256 (Key Vault `EC-HSM`, `P-256`).
    case ecP256 = "EC-P-256"
    /// ECDSA/ECDH P-384 (Key Vault `EC-HSM`, `P-384`).
    case ecP384 = "EC-P-384"

    /// Key Vault's `kty`: `oct-HSM`, `RSA-HSM` or `EC-HSM`.
    public var keyVaultType: String {
        switch self {
        case .aes256: "oct-HSM"
        case .rsa2048, .rsa3072: "RSA-HSM"
        case .ecP256, .ecP384: "EC-HSM"
        }
    }

    /// The key size in bits (`key_size`) for RSA and AES keys, `nil` for EC keys.
    public var keySize: Int? {
        switch self {
        case .aes256: 256
        case .rsa2048: 2048
        case .rsa3072: 3072
        case .ecP256, .ecP384: nil
        }
    }

    /// The curve (`crv`) of an EC key, `nil` otherwise.
    public var curve: String? {
        switch self {
        case .ecP256: "P-256"
        case .ecP384: "P-384"
        default: nil
        }
    }

    /// The key type for Key Vault's `kty` with its `key_size` or `crv`; `nil` when the broker doesn't hold such keys.
    public init?(keyVaultType kty: String, keySize: Int?, curve: String?) {
        let plain = kty.hasSuffix("-HSM") ? String(kty.dropLast(4)) : kty
        switch (plain, keySize, curve) {
        case ("oct", 256?, nil), ("oct", nil, nil): self = .aes256
        case ("RSA", 2048?, nil), ("RSA", nil, nil): self = .rsa2048
        case ("RSA", 3072?, nil): self = .rsa3072
        case ("EC", nil, "P-256"?), ("EC", nil, nil): self = .ecP256
        case ("EC", nil, "P-384"?): self = .ecP384
        default: return nil
        }
    }
}
