/// What the clean room enclave says about itself (``CleanRoomStatus``, ``CleanRoomHalt``).
public struct CleanRoomStatusReport: Codable, Hashable, Sendable {
    /// The phase of the clean room.
    public enum Phase: String, Codable, Hashable, Sendable {
        /// No contract opened yet.
        case closed
        /// Open under an active contract.
        case open
        /// A party halted the contract: nothing runs.
        case halted
    }

    /// A halt: who and why.
    public struct Halt: Codable, Hashable, Sendable {
        /// The party that halted.
        public var party: String
        /// Its reason.
        public var reason: String

        /// Creates one from its members, each as documented on its property.
        public init(party: String, reason: String) {
            self.party = party
            self.reason = reason
        }
    }

    /// The phase.
    public var phase: Phase
    /// The contract ID (lower-case hex), once opened.
    public var contractID: String?
    /// The parties that signed, sorted.
    public var signedBy: [String]
    /// The halts received.
    public var halts: [Halt]

    /// Creates one from its members, each as documented on its property.
    public init(phase: Phase, contractID: String? = nil, signedBy: [String] = [], halts: [Halt] = []) {
        self.phase = phase
        self.contractID = contractID
        self.signedBy = signedBy
        self.halts = halts
    }
}
