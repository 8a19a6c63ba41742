public import Crypto
public import EnclaveCore

/// Decrypts an encrypted data set file fed in arbitrary pieces, checking it belongs to the expected contract and
/// data set before any plaintext comes out.
///
/// Call ``finish()`` at the end of the input: a file without its final chunk (truncated) or with bytes after it is
/// refused there. Plaintext returned before a failure was authenticated chunk by chunk; a caller loading rows must
/// still discard everything when ``finish()`` or a later ``feed(_:)`` throws.
public struct DataFileDecryptor: Sendable {
    private let dataKey: SymmetricKey
    private let expectedContract: Digest32
    private let expectedDataSet: String
    private var pending: [UInt8] = []
    private var unsealer: StreamUnsealer?
    /// The header, once read.
    public private(set) var header: DataFileHeader?

    /// Expect a file of `dataSet` under `contractID`, encrypted with `dataKey`.
    public init(dataKey: SymmetricKey, contractID: Digest32, dataSet: String) {
        self.dataKey = dataKey
        self.expectedContract = contractID
        self.expectedDataSet = dataSet
    }

    /// Feed the next bytes of the file; returns the plaintext of every chunk they complete.
    ///
    /// - Throws: ``CleanRoomError/Code/dataTampered`` (bad header, a chunk that does not authenticate: wrong key,
    ///   flipped, reordered, dropped, duplicated or from another file) or ``CleanRoomError/Code/wrongContract``
    ///   (the header names another contract or data set).
    public mutating func feed(_ bytes: [UInt8]) throws(CleanRoomError) -> [UInt8] {
        if unsealer == nil {
            pending += bytes
            guard let (header, bodyStart) = try DataFileHeader.parse(pending) else {
                guard pending.count <= DataFileHeader.fixedSize + DataFileHeader.maxNameBytes else {
                    throw CleanRoomError(.dataTampered, "data file header too long")
                }
                return []
            }
            guard header.contractID == expectedContract else {
                throw CleanRoomError(
                    .wrongContract,
                    "the data file is for contract \(header.contractID), not \(expectedContract)"
                )
            }
            guard header.dataSet == expectedDataSet else {
                throw CleanRoomError(
                    .wrongContract,
                    "the data file is data set \(header.dataSet), not \(expectedDataSet)"
                )
            }
            self.header = header
            do throws(EnclaveError) {
                unsealer = try StreamUnsealer(
                    header: DataFileEncryptor.streamHeader(header),
                    key: DataFileEncryptor.fileKey(dataKey: dataKey, fileID: header.fileID)
                )
            } catch {
                throw CleanRoomError(.dataTampered, "cannot open the stream: \(error.reason)")
            }
            let body = Array(pending[bodyStart...])
            pending = []
            return try open(body)
        }
        return try open(bytes)
    }

    private mutating func open(_ bytes: [UInt8]) throws(CleanRoomError) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        do throws(EnclaveError) {
            // Force-unwrap is safe: set before the first call.
            return try unsealer!.feed(bytes)
        } catch {
            throw CleanRoomError(.dataTampered, "data file: \(error.reason)")
        }
    }

    /// Check the end of the file: the final chunk was seen and nothing follows it.
    ///
    /// - Throws: ``CleanRoomError/Code/dataTampered`` for a truncated file or trailing bytes.
    public func finish() throws(CleanRoomError) {
        guard let unsealer else { throw CleanRoomError(.dataTampered, "data file is truncated inside its header") }
        do throws(EnclaveError) {
            try unsealer.finish()
        } catch {
            throw CleanRoomError(.dataTampered, "data file: \(error.reason)")
        }
    }

    /// Decrypt a whole file (tests, small files).
    public static func decrypt(
        _ file: [UInt8],
        dataKey: SymmetricKey,
        contractID: Digest32,
        dataSet: String
    ) throws(CleanRoomError) -> [UInt8] {
        var decryptor = DataFileDecryptor(dataKey: dataKey, contractID: contractID, dataSet: dataSet)
        let plaintext = try decryptor.feed(file)
        try decryptor.finish()
        return plaintext
    }
}
