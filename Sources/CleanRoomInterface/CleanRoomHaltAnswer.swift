/// What ``CleanRoomHalt`` answers: the clean room's status and the enclave's signed acknowledgement of the halt.
public struct CleanRoomHaltAnswer: Codable, Hashable, Sendable {
    /// The status after the halt (phase `halted`, who halted).
    public var status: CleanRoomStatusReport
    /// The acknowledgement (canonical JSON `HaltAcknowledgement` of the CleanRoom module), signed by the receipt key
    /// the enclave's evidence binds, made once the halt was saved (and counted).
    public var acknowledgement: [UInt8]

    /// Creates one from its members, each as documented on its property.
    public init(status: CleanRoomStatusReport, acknowledgement: [UInt8]) {
        self.status = status
        self.acknowledgement = acknowledgement
    }
}
