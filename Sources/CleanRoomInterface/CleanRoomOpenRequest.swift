/// What ``CleanRoomOpen`` takes: the contract and the parties' documents, as the parties made them.
public struct CleanRoomOpenRequest: Codable, Hashable, Sendable {
    /// The contract's canonical bytes.
    public var contract: [UInt8]
    /// Each party's signature document (canonical JSON).
    public var signatures: [[UInt8]]
    /// Halt statements (canonical JSON); any valid one refuses the open.
    public var halts: [[UInt8]]
    /// An attestation service challenge to bind in the runtime data (a short token), or nil.
    public var challenge: String?

    /// The largest contract accepted (1 MiB).
    public static let maxContractBytes = 1 << 20
    /// The most signature or halt documents accepted.
    public static let maxDocuments = 256
    /// The largest signature or halt document accepted (4 KiB).
    public static let maxDocumentBytes = 4096

    /// Creates one from its members, each as documented on its property.
    public init(contract: [UInt8], signatures: [[UInt8]], halts: [[UInt8]] = [], challenge: String? = nil) {
        self.contract = contract
        self.signatures = signatures
        self.halts = halts
        self.challenge = challenge
    }
}
