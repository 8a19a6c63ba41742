public import EnclaveCore

/// What the enclave processes: an envelope file (`enclave keys encrypt`) under a broker key, and the broker's
/// release signing key to check the release answer with.
public struct ProcessRequest: Codable, Sendable {
    /// The file, as `enclave keys encrypt` wrote it: opaque to the host.
    public var file: [UInt8]
    /// The broker key the file must be encrypted under (its name); the version is the file's.
    public var keyName: String
    /// The broker's release signing key (P-256, raw `x ‖ y`): the owner's pin, checked against the broker's
    /// attestation; a release answer signed by any other key is refused.
    public var brokerKey: [UInt8]

    /// A request with the members given.
    public init(file: [UInt8], keyName: String, brokerKey: [UInt8]) {
        self.file = file
        self.keyName = keyName
        self.brokerKey = brokerKey
    }
}

/// What the enclave answers: the statistics, encrypted to the owner's broker key, and how much it read.
public struct ProcessResult: Codable, Sendable {
    /// An envelope file under the same broker key (the data key wrapped to its public part): only the owner, through
    /// the broker (`enclave keys decrypt`), or an enclave the key is released to, reads it.
    public var result: [UInt8]
    /// The key (`kid`) the result is encrypted under.
    public var keyID: String
    /// Data rows read (not secret: the host sees the file's size anyway).
    public var rows: Int
    /// Columns read.
    public var columns: Int

    /// A result with the members given.
    public init(result: [UInt8], keyID: String, rows: Int, columns: Int) {
        self.result = result
        self.keyID = keyID
        self.rows = rows
        self.columns = columns
    }
}

/// ECALL: get the file's key released by the broker (attesting this enclave), decrypt the file inside, compute
/// count, mean, minimum and maximum per column, and answer them encrypted to the owner.
public enum ProcessSecret: EnclaveCall {
    public typealias Input = ProcessRequest
    public typealias Output = ProcessResult
    public static var name: String { "secretprocessing.process" }
}
