/// A clean room's rollback counter as the key broker answers it (`GET /counters/{contract}`,
/// `POST /counters/{contract}/increment`): signed by the broker enclave's release signing key over the contract,
/// value, state digest and the caller's nonce. Neither the broker's host nor a client vouches for it: the clean room
/// enclave verifies the signature.
public struct RollbackCounterAnswer: Codable, Hashable, Sendable {
    /// The contract ID (64 lower-case hex characters).
    public var contract: String
    /// The counter's value.
    public var value: UInt64
    /// The state digest recorded with it (empty at 0).
    public var state: String
    /// The caller's nonce.
    public var nonce: String
    /// The broker's ES256 signature, raw `r ‖ s`, base64url.
    public var signature: String

    /// Creates one from its members, each as documented on its property.
    public init(contract: String, value: UInt64, state: String, nonce: String, signature: String) {
        self.contract = contract
        self.value = value
        self.state = state
        self.nonce = nonce
        self.signature = signature
    }
}
