/// What ``CleanRoomLoad`` takes: which data set, its key wrapped to the enclave's attested key, and the owner's
/// upload signature, which the enclave checks itself over the bytes it reads (the host is not trusted to have).
public struct CleanRoomLoadRequest: Codable, Hashable, Sendable {
    /// The data set (table) of the contract.
    public var dataSet: String
    /// The data key (32 bytes) as a compact JWE to the enclave's key.
    public var wrappedKey: String
    /// The data set owner's `DataSetUploadSigning` signature over the contract, the data set and the SHA-256 of the
    /// whole encrypted file (base64url raw ES256).
    public var ownerSignature: String

    /// The longest wrapped key accepted.
    public static let maxWrappedKeyBytes = 16 << 10

    /// Creates one from its members, each as documented on its property.
    public init(dataSet: String, wrappedKey: String, ownerSignature: String) {
        self.dataSet = dataSet
        self.wrappedKey = wrappedKey
        self.ownerSignature = ownerSignature
    }
}

/// What ``CleanRoomReadChunk`` asks the host for.
public struct CleanRoomChunkRequest: Codable, Hashable, Sendable {
    /// The data set.
    public var dataSet: String
    /// Where to start.
    public var offset: Int64
    /// At most this many bytes.
    public var length: Int32

    /// Creates one from its members, each as documented on its property.
    public init(dataSet: String, offset: Int64, length: Int32) {
        self.dataSet = dataSet
        self.offset = offset
        self.length = length
    }
}

/// What a load did (``CleanRoomLoad``): no data values, only counts, lines and reasons.
public struct CleanRoomLoadReport: Codable, Hashable, Sendable {
    /// The data set.
    public var dataSet: String
    /// Rows loaded.
    public var rows: Int
    /// Rows refused.
    public var badRowCount: Int
    /// The first refused rows: `line N: reason`.
    public var badRows: [String]
    /// SHA-256 of the ciphertext the enclave read, lower-case hex.
    public var ciphertextSHA256: String

    /// Creates one from its members, each as documented on its property.
    public init(dataSet: String, rows: Int, badRowCount: Int, badRows: [String], ciphertextSHA256: String) {
        self.dataSet = dataSet
        self.rows = rows
        self.badRowCount = badRowCount
        self.badRows = badRows
        self.ciphertextSHA256 = ciphertextSHA256
    }
}
