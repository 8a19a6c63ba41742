internal import AttestationService
public import CleanRoom
public import CleanRoomInterface
internal import Crypto
public import EnclaveCore
public import EnclaveHost
internal import Foundation
public import NIOCore

/// The clean room's untrusted host: stores what the parties submit (the contract, signatures, halt statements,
/// encrypted data sets) and drives the clean room enclave.
///
/// The host checks what it can (a signature verifies, a data file's header names this contract and a data set of
/// it) so that parties get a clear error early; the enclave checks everything again itself. The host never holds a
/// data key or a plaintext row: data sets are stored as uploaded (ciphertext) and keys reach the enclave only
/// wrapped to its attested key.
public actor CleanRoomHost {
    /// Size limits on what parties submit.
    public struct Limits: Sendable {
        /// The largest encrypted data set accepted (default 1 GiB).
        public var maxDataSetBytes: Int64
        /// The largest contract accepted (default 1 MiB, the canonical form's limit).
        public var maxContractBytes: Int
        /// The largest signature or halt statement accepted (default 4 KiB).
        public var maxDocumentBytes: Int

        /// Creates one from its members, each as documented on its property.
        public init(
            maxDataSetBytes: Int64 = 1 << 30,
            maxContractBytes: Int = CleanRoomOpenRequest.maxContractBytes,
            maxDocumentBytes: Int = CleanRoomOpenRequest.maxDocumentBytes
        ) {
            self.maxDataSetBytes = maxDataSetBytes
            self.maxContractBytes = maxContractBytes
            self.maxDocumentBytes = maxDocumentBytes
        }
    }

    /// The store.
    public let store: CleanRoomStore
    /// The limits.
    public let limits: Limits
    let enclave: Enclave
    private(set) var contract: Contract?
    private var opened: CleanRoomOpened?
    private var enclaveRefusal: String?
    /// What the enclave said about each data set it loaded.
    private(set) var loads: [String: CleanRoomLoadReport] = [:]
    /// The data sets with an upload in flight (one at a time each).
    private var uploading: Set<String> = []
    /// How data keys are obtained from the key broker (nil: only keys already wrapped to the enclave are loaded).
    let keyRelease: CleanRoomKeyRelease?

    /// A host over `store` driving `enclave` (a loaded CleanRoomEnclave); a contract already stored is reloaded and,
    /// when every party signed it, opened in the enclave. With `keyRelease`, data sets are loaded with their owners'
    /// keys released by the key broker to the attested clean room (``loadDataSet(name:brokerKey:version:)``).
    public init(
        store: CleanRoomStore,
        enclave: Enclave,
        limits: Limits = Limits(),
        keyRelease: CleanRoomKeyRelease? = nil
    ) async throws {
        self.store = store
        self.enclave = enclave
        self.limits = limits
        self.keyRelease = keyRelease
        if let bytes = try await store.contract() {
            contract = try Self.refusing { () throws(CleanRoomError) in try Contract(canonicalBytes: bytes) }
            try await openIfActive()
        }
    }

    /// Store the contract (canonical bytes). A host serves one contract: the same one again is accepted, another is
    /// refused (`ContractExists`).
    public func submitContract(_ bytes: [UInt8]) async throws -> Digest32 {
        guard bytes.count <= limits.maxContractBytes else {
            throw ServiceError.tooLarge("the contract is larger than \(limits.maxContractBytes) bytes")
        }
        let contract = try Self.refusing { () throws(CleanRoomError) in
            let contract = try Contract(canonicalBytes: bytes)
            try contract.validate()
            return contract
        }
        if let current = self.contract {
            guard current.id == contract.id else {
                throw ServiceError(
                    status: .conflict,
                    code: "ContractExists",
                    message: "this clean room serves contract \(current.id); start another host for \(contract.id)"
                )
            }
            return current.id
        }
        guard try await store.setContract(bytes, id: contract.id.hex) else {
            throw ServiceError(status: .conflict, code: "ContractExists", message: "a contract is stored already")
        }
        self.contract = contract
        return contract.id
    }

    /// Store a party's signature (it must verify for the contract); once every party signed, the enclave opens.
    public func submitSignature(_ bytes: [UInt8]) async throws -> ContractState {
        let contract = try requireContract()
        guard bytes.count <= limits.maxDocumentBytes else {
            throw ServiceError.tooLarge("the signature is larger than \(limits.maxDocumentBytes) bytes")
        }
        let signature = try Self.refusing { () throws(CleanRoomError) in
            let signature = try ContractSignature(canonicalBytes: bytes)
            try signature.verify(for: contract)
            return signature
        }
        try await store.putSignature(party: signature.party, bytes)
        try await openIfActive()
        return try await state()
    }

    /// What ``submitHalt(_:)`` answers.
    public struct HaltAnswer: Sendable {
        /// The contract's state from the stored documents (halted).
        public var state: ContractState
        /// The enclave's acknowledgement (canonical JSON `HaltAcknowledgement`, signed by its receipt key once the
        /// halt was saved and counted); nil when no enclave is open or it refused (``refusal``).
        public var acknowledgement: [UInt8]?
        /// Why the enclave gave no acknowledgement, if it was open and refused.
        public var refusal: String?
    }

    /// Store a party's halt statement (it must verify) and deliver it to the enclave: nothing runs afterwards. The
    /// enclave saves the halt in its durable state and acknowledges it; the party holds the host to that
    /// acknowledgement (a host that never delivers a halt is caught only by its absence).
    public func submitHalt(_ bytes: [UInt8]) async throws -> HaltAnswer {
        let contract = try requireContract()
        guard bytes.count <= limits.maxDocumentBytes else {
            throw ServiceError.tooLarge("the halt statement is larger than \(limits.maxDocumentBytes) bytes")
        }
        let halt = try Self.refusing { () throws(CleanRoomError) in
            let halt = try HaltStatement(canonicalBytes: bytes)
            try halt.verify(for: contract)
            return halt
        }
        try await store.putHalt(party: halt.party, bytes)
        var acknowledgement: [UInt8]?
        var refusal: String?
        if opened != nil {
            do {
                acknowledgement = try await enclave.call(CleanRoomHalt.self, bytes).acknowledgement
            } catch let error as EnclaveError {
                // The halt is stored here (this host does not open the enclave again under it) and holds in the
                // enclave's memory; without the acknowledgement the party can't count on it surviving a restart.
                enclaveRefusal = error.reason
                refusal = error.reason
            }
        }
        return HaltAnswer(state: try await state(), acknowledgement: acknowledgement, refusal: refusal)
    }

    /// The contract's state from the stored documents.
    public func state() async throws -> ContractState {
        let contract = try requireContract()
        let signatures = try await store.signatures()
        let halts = try await store.halts()
        return try Self.refusing { () throws(CleanRoomError) in
            try ContractState.evaluate(
                contract,
                signatures: try signatures.map { (bytes) throws(CleanRoomError) in
                    try ContractSignature(canonicalBytes: bytes)
                },
                halts: try halts.map { (bytes) throws(CleanRoomError) in try HaltStatement(canonicalBytes: bytes) }
            )
        }
    }

    /// The enclave's runtime data and evidence (for the attestation service), once it opened under the contract.
    public func attestation() throws -> CleanRoomOpened {
        guard let opened else {
            throw ServiceError(
                status: .conflict,
                code: "NotOpen",
                message: enclaveRefusal.map { "the clean room enclave refused the contract: \($0)" }
                    ?? "the clean room opens once every party signed the contract"
            )
        }
        return opened
    }

    /// The enclave's own status, and why it refused the contract if it did.
    public func enclaveStatus() async -> (report: CleanRoomStatusReport?, refusal: String?) {
        let report = try? await enclave.call(CleanRoomStatus.self, Empty())
        return (report, enclaveRefusal)
    }

    /// Store an encrypted data set streamed in `body`: at most ``Limits/maxDataSetBytes``; its header must name this
    /// contract and the data set `name`, which the contract must have. `sha256` is the digest the upload declares
    /// (lower-case hex, `X-Upload-SHA256`) and `ownerSignature` must be the data set owner's `DataSetUploadSigning`
    /// signature over it: checked before a byte of `body` is read or written (`uploadSignature`, nothing read), and
    /// the body's digest must then be `sha256` (`uploadDigest`, the partial file removed). A data set takes one
    /// upload at a time (`uploadInProgress`, 409), so unsigned or replayed uploads can't fill the disk. Stored as is
    /// (ciphertext), replacing an earlier upload of the same data set only once the new one is complete and checked.
    public func storeDataSet(
        name: String,
        ownerSignature: String,
        sha256 declared: String,
        body: some AsyncSequence<ByteBuffer, any Error>
    ) async throws -> CleanRoomStore.DataSetRecord {
        let contract = try requireContract()
        guard contract.dataSet(name) != nil else {
            throw ServiceError(
                status: .notFound,
                code: "UnknownDataSet",
                message: "the contract has no data set named \(String(name.prefix(100)))"
            )
        }
        if try await state().phase == .halted {
            throw ServiceError(status: .conflict, code: "halted", message: "the contract was halted")
        }
        guard Self.isDigest(declared) else {
            throw ServiceError.badRequest(
                "uploadDigest",
                "\(Self.uploadDigestName) must be the upload's SHA-256, 64 lower-case hex digits"
            )
        }
        // The version it names is the enclave's to enforce (it keeps the highest loaded): the host only checks the
        // owner signed this upload, before it reads or writes a byte of it.
        _ = try Self.refusing { () throws(CleanRoomError) in
            try DataSetUploadSigning.verify(ownerSignature, contract: contract, dataSet: name, sha256: declared)
        }
        // No await between the check and the insert: two uploads of one data set can't both pass.
        guard !uploading.contains(name) else {
            throw ServiceError(
                status: .conflict,
                code: "uploadInProgress",
                message: "data set \(name) is being uploaded already: retry once that upload ended"
            )
        }
        uploading.insert(name)
        defer { uploading.remove(name) }
        let path = store.dataSetPath(name)
        let temporary = path + ".upload-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
            let file = FileHandle(forWritingAtPath: temporary)
        else { throw ServiceError.internal("cannot create the data set file") }
        var completed = false
        defer {
            try? file.close()
            if !completed { try? FileManager.default.removeItem(atPath: temporary) }
        }
        var hasher = SHA256()
        var size: Int64 = 0
        var head: [UInt8] = []
        var headerChecked = false
        for try await buffer in body {
            size += Int64(buffer.readableBytes)
            guard size <= limits.maxDataSetBytes else {
                throw ServiceError.tooLarge("the data set is larger than \(limits.maxDataSetBytes) bytes")
            }
            let bytes = Array(buffer: buffer)
            if !headerChecked {
                head += bytes
                headerChecked = try Self.checkHeader(head, contract: contract, name: name)
            }
            hasher.update(data: bytes)
            try file.write(contentsOf: bytes)
        }
        guard headerChecked else {
            throw ServiceError.badRequest("dataTampered", "the upload ends inside the data file's header")
        }
        let sha256 = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard sha256 == declared else {
            throw ServiceError.badRequest(
                "uploadDigest",
                "the upload's SHA-256 is \(sha256), not the \(declared) its owner signed (the bytes changed)"
            )
        }
        try file.synchronize()
        try file.close()
        // The signature goes beside the file (the enclave checks it again when it loads): written first, so a stop
        // between the two renames leaves a new signature over the old file, which the enclave refuses (re-upload).
        let signatureTemporary = temporary + ".sig"
        guard
            FileManager.default.createFile(
                atPath: signatureTemporary,
                contents: Data(ownerSignature.utf8),
                attributes: [.posixPermissions: 0o600]
            ), rename(signatureTemporary, store.dataSetSignaturePath(name)) == 0
        else {
            try? FileManager.default.removeItem(atPath: signatureTemporary)
            throw ServiceError.internal("cannot store the data set's signature")
        }
        guard rename(temporary, path) == 0 else { throw ServiceError.internal("cannot store the data set file") }
        completed = true
        let record = CleanRoomStore.DataSetRecord(
            name: name,
            path: path,
            size: size,
            sha256: sha256,
            uploaded: Date()
        )
        try await store.putDataSet(record)
        return record
    }

    /// Have the enclave load data set `name` (uploaded before) with its key wrapped to the enclave's attested key;
    /// the host only carries the wrapped key and the ciphertext (``ocalls(directory:)``).
    public func loadDataSet(name: String, wrappedKey: String) async throws -> CleanRoomLoadReport {
        _ = try attestation()
        guard try await store.dataSets().contains(where: { $0.name == name }) else {
            throw ServiceError(
                status: .conflict,
                code: "NotUploaded",
                message: "data set \(String(name.prefix(100))) was not uploaded"
            )
        }
        let signature: String
        do {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: store.dataSetSignaturePath(name)))
            guard bytes.count <= 256 else { throw CocoaError(.fileReadTooLarge) }
            signature = String(decoding: bytes, as: UTF8.self)
        } catch {
            throw ServiceError(
                status: .conflict,
                code: "NotUploaded",
                message: "data set \(String(name.prefix(100))) has no owner's signature: upload it again"
            )
        }
        do {
            let report = try await enclave.call(
                CleanRoomLoad.self,
                .init(dataSet: name, wrappedKey: wrappedKey, ownerSignature: signature)
            )
            loads[name] = report
            return report
        } catch let error as EnclaveError {
            throw Self.refusal(error)
        }
    }

    /// An enclave's refusal as a 422 named by the check that leads its reason (`halted: …` → `halted`).
    static func refusal(_ error: EnclaveError) -> ServiceError {
        let check = error.reason.prefix { $0.isLetter }
        let named = !check.isEmpty && error.reason.dropFirst(check.count).hasPrefix(":")
        return ServiceError(
            status: .unprocessableContent,
            code: named ? String(check) : "EnclaveRefused",
            message: error.reason
        )
    }

    /// The OCALLs the clean room enclave makes of its host: pieces of the encrypted data sets stored under
    /// `directory` (bounded, by data set name: an SQL identifier, so never a path).
    public static func ocalls(directory: String) -> OCallTable {
        var table = OCallTable()
        // The enclave's sealed durable state (budget ledger, receipt chain head): CleanRoomStore+Ledger.swift.
        CleanRoomStore.registerStateCalls(&table, directory: directory)
        table.register(CleanRoomReadChunk.self) { request in
            guard Contract.isIdentifier(request.dataSet), request.dataSet.utf8.count <= 255 else {
                throw EnclaveError.malformedInput("not a data set name")
            }
            guard request.offset >= 0, (1...(16 << 20)).contains(request.length) else {
                throw EnclaveError.malformedInput("offset or length out of range")
            }
            guard let file = FileHandle(forReadingAtPath: directory + "/datasets/" + request.dataSet + ".ecr") else {
                throw EnclaveError.callFailed("data set \(request.dataSet) is not stored")
            }
            defer { try? file.close() }
            try file.seek(toOffset: UInt64(request.offset))
            return Array(try file.read(upToCount: Int(request.length)) ?? Data())
        }
        return table
    }

    /// The header an upload declares its SHA-256 in (lower-case hex; the owner's signature covers it).
    public static let uploadDigestName = "X-Upload-SHA256"

    /// Whether `text` is a SHA-256 as uploads declare it: 64 lower-case hex digits.
    static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Whether `head` holds a whole header naming `contract` and `name`; throws for a header that does not.
    static func checkHeader(_ head: [UInt8], contract: Contract, name: String) throws -> Bool {
        let parsed = try refusing { () throws(CleanRoomError) in try DataFileHeader.parse(head) }
        guard let (header, _) = parsed else {
            guard head.count <= 1024 else {
                throw ServiceError.badRequest("dataTampered", "the data file's header is too long")
            }
            return false
        }
        guard header.contractID == contract.id else {
            throw ServiceError.badRequest(
                "wrongContract",
                "the data file is for contract \(header.contractID), not \(contract.id)"
            )
        }
        guard header.dataSet == name else {
            throw ServiceError.badRequest(
                "wrongContract",
                "the data file is data set \(String(header.dataSet.prefix(100))), not \(name)"
            )
        }
        return true
    }

    private func requireContract() throws -> Contract {
        guard let contract else {
            throw ServiceError(status: .conflict, code: "NoContract", message: "no contract was submitted yet")
        }
        return contract
    }

    /// Open the enclave under the contract when every party signed it (and nobody halted it).
    private func openIfActive() async throws {
        guard opened == nil, try await state().phase == .active else { return }
        let request = CleanRoomOpenRequest(
            contract: try requireContract().canonicalBytes,
            signatures: try await store.signatures(),
            halts: try await store.halts()
        )
        do {
            opened = try await enclave.call(CleanRoomOpen.self, request)
            enclaveRefusal = nil
        } catch let error as EnclaveError {
            enclaveRefusal = error.reason
        }
    }

    /// Run `body`; a clean room refusal becomes a 400 named by its code.
    static func refusing<T>(_ body: () throws(CleanRoomError) -> T) throws(ServiceError) -> T {
        do {
            return try body()
        } catch {
            throw ServiceError.badRequest(error.code.name, error.reason)
        }
    }
}
