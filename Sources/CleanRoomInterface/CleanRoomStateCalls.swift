public import EnclaveCore

// The clean room's durable state (privacy budget ledger and receipt chain head), sealed by the enclave and kept by
// the untrusted host. The host only stores bytes it can't read or forge; restoring an older copy is what the
// rollback counter catches.

/// OCALL: the host answers the last sealed state saved for a contract (``CleanRoomStateBlob/blob`` empty: none).
public enum CleanRoomLoadState: EnclaveCall {
    public typealias Input = CleanRoomStateBlob
    public typealias Output = CleanRoomStateBlob
    public static var name: String { "cleanroom.loadState" }
}

/// OCALL: the host replaces the sealed state kept for a contract, durably (written and synced before it answers).
public enum CleanRoomSaveState: EnclaveCall {
    public typealias Input = CleanRoomStateBlob
    public typealias Output = Empty
    public static var name: String { "cleanroom.saveState" }
}

/// A contract's sealed state as the host keeps it (``CleanRoomLoadState``, ``CleanRoomSaveState``).
public struct CleanRoomStateBlob: Codable, Hashable, Sendable {
    /// The contract ID, lower-case hex (64 characters).
    public var contractID: String
    /// The sealed state (empty: none, in a load request and an answer for a contract with no state yet).
    public var blob: [UInt8]

    /// The largest sealed state accepted either way (1 MiB).
    public static let maxBytes = 1 << 20

    /// Creates one from its members, each as documented on its property.
    public init(contractID: String, blob: [UInt8] = []) {
        self.contractID = contractID
        self.blob = blob
    }
}
