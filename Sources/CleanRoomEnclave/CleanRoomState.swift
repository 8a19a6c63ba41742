import CleanRoom
import CleanRoomEngine
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation
import KeyReleaseFormats
import Synchronization

/// The clean room's state inside the enclave: the contract it serves, its phase and its ephemeral key.
///
/// The key agreement key is the one data keys are wrapped to (JWE `ECDH-ES+A256KW` by the key broker); it never
/// leaves the enclave.
final class CleanRoomState: Sendable {
    struct Opened {
        var contract: Contract
        var state: ContractState
        var key: P256.KeyAgreement.PrivateKey
        /// The key receipts are signed with (ES256), made at open beside ``key`` and bound in the same evidence
        /// (runtime data `receiptKey`); it signs nothing else, and ``key`` signs nothing.
        var receiptKey: P256.Signing.PrivateKey
        /// The key rollback counter increments are signed with (ES256 over
        /// `CleanRoomCounterRequest.incrementMessage`), made at open and bound in the evidence (runtime data
        /// `counterRequestKey`) with ``counterKey``; it signs nothing else. The evidence is public: this key is what
        /// tells the key broker an increment is this enclave's.
        var counterRequestKey: P256.Signing.PrivateKey
        /// The clean room's database, made at the first load.
        var database: CleanRoomDatabase?
        /// Data sets loaded or loading (each loads once).
        var loads: Set<String> = []
        /// The query engine over ``database`` (made with it).
        var engine: QueryEngine?
        /// SHA-256 of each loaded data set's ciphertext.
        var inputs: [String: Digest32] = [:]
        /// The latest evidence binding ``key`` (a JSON `CleanRoomOpened`), what receipts carry.
        var evidence: [UInt8] = []
        /// The last receipt made (the chain's head), restored from the durable state after a restart.
        var head: DurableRoomState.Head?
        /// The privacy budget ledger (in memory; its durable copy is the sealed state the host keeps).
        var budget: PrivacyBudget
        /// The durable state's generation: how many times it was saved.
        var generation: UInt64 = 0
        /// Whether the host keeps the durable state (it has the state OCALLs).
        var durable = false
        /// Whether the durable state was restored (nothing loads or runs before).
        var restored = false
        /// The key broker's signing key that signs rollback counter answers (nil: the host has no counter).
        var counterKey: P256.Signing.PublicKey?
        /// Query request nonces seen (replays are refused).
        var nonces: Set<String> = []
        /// The highest upload version loaded per data set (restored from and saved in the durable state).
        var uploads: [String: UInt64] = [:]
    }

    /// The most ciphertext one data set may have (1 GiB), and the piece asked of the host per OCALL (1 MiB).
    static let maxDataSetBytes: Int64 = 1 << 30
    static let chunkBytes: Int32 = 1 << 20

    let opened = Mutex<Opened?>(nil)
    /// Serializes restoring the durable state and running queries (each run saves it before answering).
    let gate = SerialGate()

    /// Verify the request and open (or re-attest) the clean room (then ``restore(using:)`` and
    /// ``runtime(challenge:)``).
    func open(_ request: CleanRoomOpenRequest, identity: EnclaveIdentity) throws {
        guard request.contract.count <= CleanRoomOpenRequest.maxContractBytes else {
            throw EnclaveError.limitExceeded("limitExceeded: the contract is over 1 MiB")
        }
        let documents = request.signatures + request.halts
        guard request.signatures.count <= CleanRoomOpenRequest.maxDocuments,
            request.halts.count <= CleanRoomOpenRequest.maxDocuments,
            documents.allSatisfy({ $0.count <= CleanRoomOpenRequest.maxDocumentBytes })
        else {
            throw EnclaveError.limitExceeded("limitExceeded: too many or too large signature or halt documents")
        }
        if let challenge = request.challenge {
            guard challenge.utf8.count <= 256,
                challenge.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C })
            else { throw EnclaveError.malformedInput("malformed: the challenge is not a short token") }
        }
        let contract: Contract
        let state: ContractState
        do throws(CleanRoomError) {
            contract = try Contract(canonicalBytes: request.contract)
            try contract.validate()
            let signatures = try request.signatures.map { (bytes) throws(CleanRoomError) in
                try ContractSignature(canonicalBytes: bytes)
            }
            let halts = try request.halts.map { (bytes) throws(CleanRoomError) in
                try HaltStatement(canonicalBytes: bytes)
            }
            state = try ContractState.evaluate(contract, signatures: signatures, halts: halts)
            try state.requireActive()
        } catch {
            throw Self.crossing(error)
        }
        try Self.check(identity, against: contract.enclave)
        let id = contract.id
        try opened.withLock { current throws in
            if let current {
                guard current.contract.id == id else {
                    throw EnclaveError.callFailed(
                        "wrongContract: this clean room serves contract \(current.contract.id), not \(id)"
                    )
                }
                guard current.state.phase == .active else {
                    throw EnclaveError.callFailed("halted: this clean room's contract was halted")
                }
                return
            }
            let key = P256.KeyAgreement.PrivateKey()
            let receiptKey = P256.Signing.PrivateKey()
            let budget: PrivacyBudget
            do throws(CleanRoomError) {
                budget = try Self.budget(contractID: id, ledger: [])
            } catch {
                throw Self.crossing(error)
            }
            current = Opened(
                contract: contract,
                state: state,
                key: key,
                receiptKey: receiptKey,
                counterRequestKey: P256.Signing.PrivateKey(),
                budget: budget
            )
        }
    }

    /// The contract ID and the runtime data to bind in the evidence of the open room.
    func runtime(challenge: String?) throws -> (contractID: String, runtime: [UInt8]) {
        let room = try opened.withLock { current throws -> Opened in
            guard let room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            return room
        }
        let runtime = try Self.runtimeData(
            contractID: room.contract.id,
            key: room.key.publicKey,
            receiptKey: room.receiptKey.publicKey,
            counterKey: room.counterKey,
            counterRequestKey: room.counterKey == nil ? nil : room.counterRequestKey.publicKey,
            challenge: challenge
        )
        return (room.contract.id.hex, runtime)
    }

    /// Apply a halt statement (it must verify for the open contract), save it in the durable state (counted by the
    /// rollback counter) and answer the acknowledgement signed by the receipt key.
    ///
    /// The halt holds in memory at once, whatever follows; the acknowledgement leaves only once it is saved, as a
    /// run's result does. A room whose saved state was not restored can't save (it would overwrite the state it
    /// refused): it keeps the halt in memory and refuses `notRestored`, without acknowledgement.
    func halt(_ bytes: [UInt8], persistence: RoomPersistence?) async throws -> CleanRoomHaltAnswer {
        guard bytes.count <= CleanRoomOpenRequest.maxDocumentBytes else {
            throw EnclaveError.limitExceeded("limitExceeded: the halt statement is over 4 KiB")
        }
        return try await gate.run {
            let (statement, restored) = try opened.withLock { current throws -> (HaltStatement, Bool) in
                guard var room = current else {
                    throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
                }
                let statement: HaltStatement
                do throws(CleanRoomError) {
                    statement = try HaltStatement(canonicalBytes: bytes)
                    try statement.verify(for: room.contract)
                } catch {
                    throw Self.crossing(error)
                }
                if !room.state.halts.contains(where: { $0.party == statement.party }) {
                    room.state.halts.append((statement.party, statement.reason))
                }
                room.state.phase = .halted
                current = room
                return (statement, room.restored)
            }
            guard restored else {
                throw EnclaveError.callFailed(
                    "notRestored: the halt holds in this enclave's memory only: the clean room's saved state was not "
                        + "restored, so the halt is not saved and not acknowledged"
                )
            }
            let generation = try await persist(head: nil, using: persistence)
            return try opened.withLock { current throws -> CleanRoomHaltAnswer in
                guard let room = current else {
                    throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
                }
                var acknowledgement = HaltAcknowledgement(
                    contractID: room.contract.id,
                    party: statement.party,
                    halt: HaltAcknowledgement.digest(ofHalt: bytes),
                    durable: room.durable && persistence != nil,
                    counted: room.durable && persistence != nil && room.counterKey != nil,
                    generation: room.durable && persistence != nil ? generation : 0,
                    evidence: room.evidence
                )
                do throws(CleanRoomError) {
                    try acknowledgement.sign(with: room.receiptKey)
                } catch {
                    throw Self.crossing(error)
                }
                return CleanRoomHaltAnswer(status: Self.report(room), acknowledgement: acknowledgement.canonicalBytes)
            }
        }
    }

    /// Load data set `request.dataSet`: unwrap its key with the enclave's key, pull the ciphertext through
    /// `read`, decrypt and load it in one transaction.
    func load(
        _ request: CleanRoomLoadRequest,
        persistence: RoomPersistence? = nil,
        read: (CleanRoomChunkRequest) async throws -> [UInt8]
    ) async throws -> CleanRoomLoadReport {
        guard request.wrappedKey.utf8.count <= CleanRoomLoadRequest.maxWrappedKeyBytes else {
            throw EnclaveError.limitExceeded("limitExceeded: the wrapped key is over 16 KiB")
        }
        let (contract, key, database) = try opened.withLock {
            current throws -> (Contract, P256.KeyAgreement.PrivateKey, CleanRoomDatabase) in
            guard var room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            guard room.state.phase == .active else {
                throw EnclaveError.callFailed("halted: this clean room's contract was halted")
            }
            guard room.restored else {
                throw EnclaveError.callFailed("notRestored: the clean room's saved state was not restored")
            }
            guard room.contract.dataSet(request.dataSet) != nil else {
                throw EnclaveError.callFailed(
                    "wrongContract: the contract has no data set \(request.dataSet.prefix(100))"
                )
            }
            guard !room.loads.contains(request.dataSet) else {
                throw EnclaveError.callFailed("alreadyLoaded: data set \(request.dataSet) is loaded or loading")
            }
            let database: CleanRoomDatabase
            if let existing = room.database {
                database = existing
            } else {
                do throws(CleanRoomError) {
                    let engine = try QueryEngine(
                        contract: room.contract,
                        state: room.state,
                        budget: room.budget
                    )
                    database = engine.database
                    room.engine = engine
                } catch {
                    throw Self.crossing(error)
                }
                room.database = database
            }
            room.loads.insert(request.dataSet)
            current = room
            return (room.contract, room.key, database)
        }
        do {
            let report = try await load(
                request,
                contract: contract,
                key: key,
                database: database,
                persistence: persistence,
                read: read
            )
            let digest = try? Digest32(hex: report.ciphertextSHA256)
            opened.withLock { $0?.inputs[request.dataSet] = digest }
            return report
        } catch {
            // Nothing of a failed load stays (the loader rolls back): the data set may be loaded again.
            opened.withLock { _ = $0?.loads.remove(request.dataSet) }
            throw error
        }
    }

    private func load(
        _ request: CleanRoomLoadRequest,
        contract: Contract,
        key: P256.KeyAgreement.PrivateKey,
        database: CleanRoomDatabase,
        persistence: RoomPersistence?,
        read: (CleanRoomChunkRequest) async throws -> [UInt8]
    ) async throws -> CleanRoomLoadReport {
        let plaintext: [UInt8]
        do throws(KeyReleaseFormatError) {
            plaintext = try ECDHESJWE.decrypt(request.wrappedKey, with: key).plaintext
        } catch {
            throw EnclaveError.invalidSignature(
                "keyUnwrap: the wrapped data key does not open with this clean room's key"
            )
        }
        guard plaintext.count == 32 else {
            throw EnclaveError.malformedInput("keyUnwrap: the data key is \(plaintext.count) bytes, not 32")
        }
        let dataKey = SymmetricKey(data: plaintext)
        // The ciphertext, pulled from the host (untrusted: every piece is bounded, the total too; the decryptor
        // authenticates every chunk and the file's end).
        var pieces: [[UInt8]] = []
        var offset: Int64 = 0
        while true {
            let piece = try await read(.init(dataSet: request.dataSet, offset: offset, length: Self.chunkBytes))
            guard piece.count <= Int(Self.chunkBytes) else {
                throw EnclaveError.protocolViolation("the host answered more than the piece asked for")
            }
            if piece.isEmpty { break }
            offset += Int64(piece.count)
            guard offset <= Self.maxDataSetBytes else {
                throw EnclaveError.limitExceeded("limitExceeded: the data set is over 1 GiB")
            }
            pieces.append(piece)
        }
        // The owner's signature over exactly the bytes read, checked here: a host that wrapped a key of its own to
        // this enclave's (public) key and encrypted rows of its own could otherwise load them as an owner's data
        // set — fake identities that pad groups past the thresholds, or skew the other owners' results.
        var hasher = SHA256()
        for piece in pieces { hasher.update(data: piece) }
        let sha256 = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let version: UInt64
        do throws(CleanRoomError) {
            version = try DataSetUploadSigning.verify(
                request.ownerSignature,
                contract: contract,
                dataSet: request.dataSet,
                sha256: sha256
            )
        } catch {
            throw Self.crossing(error)
        }
        // Never an older upload than one loaded before (an owner's replaced data brought back by the host); a newer
        // one is recorded in the durable state before its rows load.
        try await record(upload: request.dataSet, version: version, persistence: persistence)
        var index = 0
        do throws(CleanRoomError) {
            let report = try DataSetLoader.load(into: database, dataSet: request.dataSet, dataKey: dataKey) {
                () throws(CleanRoomError) -> [UInt8]? in
                guard index < pieces.count else { return nil }
                defer { index += 1 }
                return pieces[index]
            }
            return CleanRoomLoadReport(
                dataSet: report.dataSet,
                rows: report.rows,
                badRowCount: report.badRowCount,
                badRows: report.badRows.map(\.description),
                ciphertextSHA256: report.ciphertextDigest.hex
            )
        } catch {
            throw Self.crossing(error)
        }
    }

    /// Refuse `version` of data set `dataSet` below the highest loaded before (`staleUpload`); a higher one becomes
    /// the highest and is saved (and counted) before the caller loads the rows.
    func record(upload dataSet: String, version: UInt64, persistence: RoomPersistence?) async throws {
        try await gate.run {
            let recorded = try opened.withLock { current throws -> UInt64 in
                guard var room = current else {
                    throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
                }
                guard room.state.phase == .active else {
                    throw EnclaveError.callFailed("halted: this clean room's contract was halted")
                }
                let recorded = room.uploads[dataSet] ?? 0
                if version > recorded {
                    room.uploads[dataSet] = version
                    current = room
                }
                return recorded
            }
            guard version >= recorded else {
                throw EnclaveError.callFailed(
                    "staleUpload: version \(version) of data set \(dataSet) is older than version \(recorded), which "
                        + "this contract's clean room loaded before (the owner replaced it)"
                )
            }
            guard version > recorded else { return }
            do {
                try await persist(head: nil, using: persistence)
            } catch {
                // Not saved: forget it, so that loading this version again saves (and counts) it.
                opened.withLock { current in
                    if current?.uploads[dataSet] == version {
                        current?.uploads[dataSet] = recorded == 0 ? nil : recorded
                    }
                }
                throw error
            }
        }
    }

    /// The status.
    func status() -> CleanRoomStatusReport {
        opened.withLock { current in
            guard let current else { return CleanRoomStatusReport(phase: .closed) }
            return Self.report(current)
        }
    }

    static func report(_ room: Opened) -> CleanRoomStatusReport {
        CleanRoomStatusReport(
            phase: room.state.phase == .halted ? .halted : .open,
            contractID: room.contract.id.hex,
            signedBy: room.state.signedBy,
            halts: room.state.halts.map { .init(party: $0.party, reason: $0.reason) }
        )
    }

    /// Refuse to serve a contract that names another enclave: another signer, another product, a lower security
    /// version, another build when the contract pins one (its uniqueID), or a debug enclave (whose memory the host
    /// can read).
    static func check(_ identity: EnclaveIdentity, against required: Contract.EnclaveRequirement) throws {
        guard identity.signerID == required.signerID else {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract names signer \(required.signerID), this enclave is \(identity.signerID)"
            )
        }
        guard identity.productID == required.productID else {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract names product \(required.productID), this enclave is "
                    + "\(identity.productID)"
            )
        }
        guard identity.securityVersion >= required.minSecurityVersion else {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract requires security version \(required.minSecurityVersion), this "
                    + "enclave is \(identity.securityVersion)"
            )
        }
        if let pinned = required.uniqueID, identity.uniqueID != pinned {
            throw EnclaveError.measurementMismatch(
                "enclaveMismatch: the contract names build \(pinned), this enclave is \(identity.uniqueID)"
            )
        }
        guard !identity.attributes.contains(.debug) else {
            throw EnclaveError.debugNotAllowed("enclaveMismatch: a debug enclave cannot serve a contract")
        }
    }

    /// The runtime data bound into the evidence: `{"challenge"?, "contract": hex, "counterKey"?: JWK,
    /// "counterRequestKey"?: JWK, "keys": [JWK], "receiptKey": JWK}`, sorted keys. `keys` holds the key agreement key
    /// (what data keys are wrapped to); `receiptKey` the ES256 key receipts are signed with; `counterKey` the key
    /// broker's key that signs the rollback counter's answers and `counterRequestKey` the enclave's ES256 key that
    /// signs its increments (both or neither).
    static func runtimeData(
        contractID: Digest32,
        key: P256.KeyAgreement.PublicKey,
        receiptKey: P256.Signing.PublicKey,
        counterKey: P256.Signing.PublicKey? = nil,
        counterRequestKey: P256.Signing.PublicKey? = nil,
        challenge: String?
    ) throws -> [UInt8] {
        struct Runtime: Encodable {
            let challenge: String?
            let contract: String
            let counterKey: WrapJWK?
            let counterRequestKey: WrapJWK?
            let keys: [WrapJWK]
            let receiptKey: WrapJWK
        }
        func signing(_ key: P256.Signing.PublicKey, kid: String) -> WrapJWK {
            let point = key.rawRepresentation
            return WrapJWK(
                kty: "EC",
                kid: kid,
                use: "sig",
                crv: "P-256",
                x: Base64URL.encode(Array(point.prefix(32))),
                y: Base64URL.encode(Array(point.suffix(32)))
            )
        }
        let jwk = WrapJWK(p256: key, kid: "cleanroom-\(contractID.hex.prefix(16))")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let runtime = Runtime(
            challenge: challenge,
            contract: contractID.hex,
            counterKey: counterKey.map { signing($0, kid: "counter") },
            counterRequestKey: counterRequestKey.map { signing($0, kid: "counter-request") },
            keys: [jwk],
            receiptKey: signing(receiptKey, kid: "receipt-\(contractID.hex.prefix(16))")
        )
        return Array(try encoder.encode(runtime))
    }

    /// A clean room refusal as an error that crosses the boundary: the code's name leads the reason.
    static func crossing(_ error: CleanRoomError) -> EnclaveError {
        let reason = "\(error.code): \(error.reason)"
        switch error.code {
        case .badSignature, .notAParty: return .invalidSignature(reason)
        case .limitExceeded: return .limitExceeded(reason)
        case .malformed, .nonCanonical, .unknownField, .invalidContract: return .malformedInput(reason)
        default: return .callFailed(reason)
        }
    }
}
