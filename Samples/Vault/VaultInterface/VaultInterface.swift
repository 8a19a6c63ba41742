public import EnclaveCore

/// What to seal, and under which policy.
public struct SealSecret: Codable, Sendable {
    public var secret: [UInt8]
    public var policy: SealPolicy
    /// Stored in clear in the blob and authenticated: the secret's name, so blobs cannot be swapped between names.
    public var name: String

    public init(secret: [UInt8], policy: SealPolicy, name: String) {
        self.secret = secret
        self.policy = policy
        self.name = name
    }
}

/// ECALL: seal a secret; answers the blob the host stores.
public enum VaultSeal: EnclaveCall {
    public typealias Input = SealSecret
    public typealias Output = [UInt8]
    public static var name: String { "vault.seal" }
}

/// What to unseal: the blob and the name it must have been sealed under.
public struct UnsealSecret: Codable, Sendable {
    public var blob: [UInt8]
    public var name: String

    public init(blob: [UInt8], name: String) {
        self.blob = blob
        self.name = name
    }
}

/// ECALL: unseal a blob; answers the secret.
public enum VaultUnseal: EnclaveCall {
    public typealias Input = UnsealSecret
    public typealias Output = [UInt8]
    public static var name: String { "vault.unseal" }
}
