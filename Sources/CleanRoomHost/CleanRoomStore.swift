internal import EnclaveCore
public import Foundation

/// The clean room host's store: `cleanroom.sqlite` in the data directory (0600, directory 0700), or a PostgreSQL
/// database (`CleanRoomHostPostgres`), for the contract, the parties' signatures and halt statements, the data sets'
/// records and the runs; the encrypted data sets themselves (and their owners' upload signatures) are files under
/// `datasets/` in the data directory (ciphertext as uploaded, never decrypted on the host).
///
/// Nothing in it is secret: the contract and its signatures are public to the parties, data sets are ciphertext.
public final class CleanRoomStore: Sendable {
    /// An encrypted data set as stored.
    public struct DataSetRecord: Hashable, Sendable {
        /// The data set (table) name of the contract.
        public var name: String
        /// The file holding the ciphertext.
        public var path: String
        /// Its size in bytes.
        public var size: Int64
        /// SHA-256 of the ciphertext, lower-case hex.
        public var sha256: String
        /// When it was uploaded.
        public var uploaded: Date

        /// Creates one from its members, each as documented on its property.
        public init(name: String, path: String, size: Int64, sha256: String, uploaded: Date) {
            self.name = name
            self.path = path
            self.size = size
            self.sha256 = sha256
            self.uploaded = uploaded
        }
    }

    let records: any CleanRoomRecords
    /// The data directory.
    public let directory: String

    /// Open (creating) `directory/cleanroom.sqlite` and `directory/datasets`.
    public static func open(directory: String) async throws -> CleanRoomStore {
        try SecretFile.prepareDirectory(directory, what: "data directory")
        let records = try await SQLiteCleanRoomRecords.open(path: directory + "/cleanroom.sqlite")
        do {
            return try open(directory: directory, records: records)
        } catch {
            try? await records.close()
            throw error
        }
    }

    /// A store keeping its records in `records` (e.g. PostgreSQL) and its files in `directory` (created): the data
    /// sets and their upload signatures under `datasets/`, the sealed state under `state/`.
    package static func open(directory: String, records: any CleanRoomRecords) throws -> CleanRoomStore {
        try SecretFile.prepareDirectory(directory, what: "data directory")
        try SecretFile.prepareDirectory(directory + "/datasets", what: "data set directory")
        return CleanRoomStore(records: records, directory: directory)
    }

    private init(records: any CleanRoomRecords, directory: String) {
        self.records = records
        self.directory = directory
    }

    /// Close the database.
    public func close() async throws { try await records.close() }

    /// The stored contract's canonical bytes, if any.
    public func contract() async throws -> [UInt8]? { try await records.contract() }

    /// Store the contract; false when one is stored already (a host serves one contract).
    public func setContract(_ bytes: [UInt8], id: String) async throws -> Bool {
        try await records.setContract(bytes, id: id)
    }

    /// The stored signature documents, by party name.
    public func signatures() async throws -> [[UInt8]] { try await records.documents(.signature) }

    /// The stored halt statements.
    public func halts() async throws -> [[UInt8]] { try await records.documents(.halt) }

    /// Store `party`'s signature document (a later one replaces it).
    public func putSignature(party: String, _ bytes: [UInt8]) async throws {
        try await records.putDocument(.signature, party: party, bytes, received: Date())
    }

    /// Store `party`'s halt statement (a later one replaces it).
    public func putHalt(party: String, _ bytes: [UInt8]) async throws {
        try await records.putDocument(.halt, party: party, bytes, received: Date())
    }

    /// The path a data set's ciphertext is stored at.
    public func dataSetPath(_ name: String) -> String { directory + "/datasets/" + name + ".ecr" }

    /// Where the owner's upload signature of data set `name` is kept (beside ``dataSetPath(_:)``).
    public func dataSetSignaturePath(_ name: String) -> String { directory + "/datasets/" + name + ".sig" }

    /// Record a data set whose ciphertext is now at ``dataSetPath(_:)``.
    public func putDataSet(_ record: DataSetRecord) async throws { try await records.putDataSet(record) }

    /// The data sets stored, by name.
    public func dataSets() async throws -> [DataSetRecord] { try await records.dataSets() }
}
