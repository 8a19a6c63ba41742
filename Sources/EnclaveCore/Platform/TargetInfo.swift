/// What a peer needs to produce a report that this enclave can verify: its uniqueID.
public struct TargetInfo: Hashable, Codable, Sendable {
    /// The uniqueID (measurement) of the enclave that will verify the report; the report's MAC key is derived from it.
    public var uniqueID: Digest32
    /// Target the enclave with this uniqueID.
    public init(uniqueID: Digest32) { self.uniqueID = uniqueID }
}
