public import CleanRoom
public import Crypto
public import EnclaveCore

/// Loads one encrypted data set file into the clean room database: decrypt → parse CSV by the contract's schema
/// → insert, streaming, all in one transaction.
///
/// Nothing of the file stays loaded unless the whole file authenticates (a tampered, truncated or reordered chunk
/// anywhere rolls the load back). Rows that do not fit the schema are not loaded and are counted and reported by
/// line number in the ``Report``.
public enum DataSetLoader {
    /// What a load did.
    public struct Report: Hashable, Sendable {
        /// The data set.
        public var dataSet: String
        /// Rows loaded.
        public var rows: Int
        /// Rows refused (wrong column count, wrong type, malformed CSV).
        public var badRowCount: Int
        /// The first refused rows with line numbers and reasons.
        public var badRows: [RowParser.BadRow]
        /// SHA-256 of the encrypted file as received (what receipts name as the input).
        public var ciphertextDigest: Digest32
    }

    /// Load the file whose bytes `next` returns piece by piece (nil at the end).
    ///
    /// - Throws: `CleanRoomError/Code/dataTampered`, `CleanRoomError/Code/wrongContract`,
    ///   `CleanRoomError/Code/badRows` (a header that does not match the schema), or what `next` throws; then
    ///   nothing of this file is loaded.
    public static func load(
        into database: CleanRoomDatabase,
        dataSet: String,
        dataKey: SymmetricKey,
        next: () throws(CleanRoomError) -> [UInt8]?
    ) throws(CleanRoomError) -> Report {
        guard let set = database.contract.dataSet(dataSet) else {
            throw CleanRoomError(.wrongContract, "the contract has no data set \(dataSet)")
        }
        var decryptor = DataFileDecryptor(dataKey: dataKey, contractID: database.contract.id, dataSet: dataSet)
        var parser = RowParser(dataSet: set)
        var hash = SHA256()
        try database.load(dataSet) { insert throws(CleanRoomError) in
            while let piece = try next() {
                hash.update(data: piece)
                let rows = try parser.feed(try decryptor.feed(piece))
                if !rows.isEmpty { try insert(rows) }
            }
            try decryptor.finish()
            try insert(try parser.finish())
        }
        // Force-try is safe: SHA-256 is 32 bytes.
        let digest = try! Digest32(bytes: hash.finalize())
        return Report(
            dataSet: dataSet,
            rows: parser.goodRowCount,
            badRowCount: parser.badRowCount,
            badRows: parser.badRows,
            ciphertextDigest: digest
        )
    }

    /// Load a whole file held in memory, fed in pieces of `pieceSize` bytes.
    public static func load(
        into database: CleanRoomDatabase,
        dataSet: String,
        dataKey: SymmetricKey,
        file: [UInt8],
        pieceSize: Int = 1 << 20
    ) throws(CleanRoomError) -> Report {
        var offset = 0
        return try load(into: database, dataSet: dataSet, dataKey: dataKey) { () throws(CleanRoomError) -> [UInt8]? in
            guard offset < file.count else { return nil }
            let end = min(offset + max(pieceSize, 1), file.count)
            defer { offset = end }
            return Array(file[offset..<end])
        }
    }
}
