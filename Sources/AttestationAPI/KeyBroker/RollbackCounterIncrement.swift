/// The body of `POST /counters/{contract}/increment` (the clean room enclave's token is the `Authorization: Bearer`
/// credential): move the counter from `expected` to `expected + 1`, recording the new state's digest. `contract` carries
/// the contract's canonical bytes: the broker enclave moves the counter only for a token of the enclave they name, and
/// `signature` the enclave's signature over the increment with the key that token binds.
public struct RollbackCounterIncrement: Codable, Hashable, Sendable {
    /// The clean room enclave's nonce.
    public var nonce: String
    /// The value the counter must be at.
    public var expected: UInt64
    /// The new state's SHA-256, lower-case hex.
    public var state: String
    /// The contract's canonical bytes, base64url (their SHA-256 is the contract ID in the path). Nil: not sent, and
    /// the broker refuses the increment (`CounterNotAllowed`).
    public var contract: String?
    /// The clean room enclave's ES256 signature (raw r‖s, base64url) over the increment (contract, `expected`,
    /// `state`, `nonce`) with the counter request key its token's `x-ms-runtime.counterRequestKey` binds. Nil: not sent
    /// (a host older than signed increments), and the broker refuses the increment (`CounterNotAllowed`).
    public var signature: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case nonce, expected, state, contract, signature
    }

    /// Creates one from its members, each as documented on its property.
    public init(nonce: String, expected: UInt64, state: String, contract: String? = nil, signature: String? = nil) {
        self.nonce = nonce
        self.expected = expected
        self.state = state
        self.contract = contract
        self.signature = signature
    }

    /// Decodes one, refusing members it does not know (a misspelt `expected` must not read as a missing one).
    public init(from decoder: any Decoder) throws {
        try StrictMembers.refuse(in: decoder, allowed: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        nonce = try container.decode(String.self, forKey: .nonce)
        expected = try container.decode(UInt64.self, forKey: .expected)
        state = try container.decode(String.self, forKey: .state)
        contract = try container.decodeIfPresent(String.self, forKey: .contract)
        signature = try container.decodeIfPresent(String.self, forKey: .signature)
    }
}
