import CleanRoom
import CleanRoomEngine
import CleanRoomInterface
import Crypto
import EnclaveCore
import Foundation

/// The clean room's durable state: what must survive a restart of the host and the enclave.
///
/// It holds the privacy budget ledger (ε spent per owner, its version), the receipt chain's head (the last
/// receipt's sequence and digest) and the halts received (party, reason), under a generation number that grows by
/// one at every save. The enclave seals it to its signer (any enclave of the contract's signer and product at the
/// same or a higher security version can read it) and the untrusted host keeps it (``CleanRoomSaveState``,
/// ``CleanRoomLoadState``). Format v2 (`EnclaveKit.cleanroom.state.v2`) added the halts; a v1 state is refused by
/// name (`formatOutdated`): it can't say whether the contract was halted.
struct DurableRoomState: Equatable, Sendable {
    /// The last receipt made: the next one follows it.
    struct Head: Equatable, Sendable {
        var sequence: Int64
        var digest: Digest32
    }

    /// A halt in force: who and why.
    struct Halt: Equatable, Sendable {
        var party: String
        var reason: String
    }

    var contractID: Digest32
    var generation: UInt64
    /// The budget ledger's canonical JSON (`PrivacyBudget.Ledger`), empty before the first DP query.
    var ledger: [UInt8]
    var head: Head?
    /// The halts received, in order (empty: not halted).
    var halts: [Halt] = []
    /// The highest upload version loaded per data set (a lower one is refused: `staleUpload`).
    var uploads: [String: UInt64] = [:]

    static let domain = "EnclaveKit.cleanroom.state.v2"
    /// The format before halts were saved: refused.
    static let domainV1 = "EnclaveKit.cleanroom.state.v1"

    var bytes: [UInt8] {
        var members: [String: CanonicalJSON] = [
            "domain": .string(Self.domain),
            "contract": .string(contractID.hex),
            "generation": .integer(Int64(truncatingIfNeeded: generation)),
            "ledger": .string(Base64URL.encode(ledger)),
            "halts": .array(halts.map { .object(["party": .string($0.party), "reason": .string($0.reason)]) }),
            "uploads": .object(uploads.mapValues { .integer(Int64(clamping: $0)) }),
        ]
        if let head {
            members["head"] = .object(["sequence": .integer(head.sequence), "digest": .string(head.digest.hex)])
        }
        return CanonicalJSON.object(members).canonicalBytes
    }

    /// SHA-256 of ``bytes``, lower-case hex: what the rollback counter records with the generation.
    var digest: String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    init(
        contractID: Digest32,
        generation: UInt64,
        ledger: [UInt8],
        head: Head?,
        halts: [Halt] = [],
        uploads: [String: UInt64] = [:]
    ) {
        self.contractID = contractID
        self.generation = generation
        self.ledger = ledger
        self.head = head
        self.halts = halts
        self.uploads = uploads
    }

    init(bytes: [UInt8]) throws(CleanRoomError) {
        guard case .object(let members) = try CanonicalJSON.parseCanonical(bytes) else {
            throw CleanRoomError(.malformed, "the clean room's saved state does not parse")
        }
        if case .string(Self.domainV1)? = members["domain"] {
            throw CleanRoomError(
                .formatOutdated,
                "the clean room's saved state is format v1, which did not record halts: this build can't tell whether "
                    + "the contract was halted, so it does not restore it (sign a new contract)"
            )
        }
        let known = ["domain", "contract", "generation", "ledger", "head", "halts", "uploads"]
        guard members.keys.allSatisfy(known.contains),
            case .string(Self.domain)? = members["domain"],
            case .string(let contract)? = members["contract"], let id = try? Digest32(hex: contract),
            case .integer(let generation)? = members["generation"], generation >= 0,
            case .string(let ledgerText)? = members["ledger"], let ledger = Base64URL.decode(ledgerText),
            case .array(let haltItems)? = members["halts"], haltItems.count <= CleanRoomOpenRequest.maxDocuments,
            case .object(let uploadItems)? = members["uploads"], uploadItems.count <= 1024
        else { throw CleanRoomError(.malformed, "the clean room's saved state does not parse") }
        var head: Head?
        if let value = members["head"] {
            guard case .object(let fields) = value, fields.count == 2,
                case .integer(let sequence)? = fields["sequence"], sequence >= 0,
                case .string(let digest)? = fields["digest"], let digestValue = try? Digest32(hex: digest)
            else { throw CleanRoomError(.malformed, "the clean room's saved chain head does not parse") }
            head = Head(sequence: sequence, digest: digestValue)
        }
        var halts: [Halt] = []
        for item in haltItems {
            guard case .object(let fields) = item, fields.count == 2,
                case .string(let party)? = fields["party"], case .string(let reason)? = fields["reason"]
            else { throw CleanRoomError(.malformed, "the clean room's saved halts do not parse") }
            halts.append(Halt(party: party, reason: reason))
        }
        var uploads: [String: UInt64] = [:]
        for (dataSet, item) in uploadItems {
            guard case .integer(let version) = item, version >= 1 else {
                throw CleanRoomError(.malformed, "the clean room's saved upload versions do not parse")
            }
            uploads[dataSet] = UInt64(version)
        }
        self.init(
            contractID: id,
            generation: UInt64(generation),
            ledger: ledger,
            head: head,
            halts: halts,
            uploads: uploads
        )
    }
}

/// One at a time, across suspension points (an actor alone is reentrant at every `await`).
actor SerialGate {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Run `body` alone.
    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
        defer {
            if waiting.isEmpty {
                busy = false
            } else {
                waiting.removeFirst().resume()
            }
        }
        return try await body()
    }
}

/// How the enclave keeps its durable state: sealing with its platform key, the host's OCALLs to load and save.
struct RoomPersistence: Sendable {
    /// Seal state bytes (to the enclave's signer).
    var seal: @Sendable ([UInt8]) async throws -> [UInt8]
    /// Unseal what ``seal`` made: the plaintext and the security version it was sealed at; throws for anything else.
    var unseal: @Sendable ([UInt8]) async throws -> (plaintext: [UInt8], securityVersion: UInt16)
    /// The host's copy for a contract (hex ID); empty when none. Throws `unknownCall` when the host keeps none.
    var load: @Sendable (String) async throws -> [UInt8]
    /// Have the host keep `blob` for a contract (hex ID), durably.
    var save: @Sendable (String, [UInt8]) async throws -> Void
    /// The key broker's rollback counter, through the host (``CleanRoomCounter``). Throws `unknownCall` when the
    /// host has none.
    var counter: @Sendable (CleanRoomCounterRequest) async throws -> CleanRoomCounterAnswer
}

/// The rollback counter as the enclave uses it: every answer verified with the broker's key, for this contract and
/// this request's fresh nonce.
struct RollbackCounter: Sendable {
    let key: P256.Signing.PublicKey
    let contractID: String
    let call: @Sendable (CleanRoomCounterRequest) async throws -> CleanRoomCounterAnswer

    /// The broker's key, as the host's counter says it; nil when the host has no counter (`unknownCall`).
    static func key(
        contractID: String,
        using persistence: RoomPersistence
    ) async throws -> P256.Signing.PublicKey? {
        let answer: CleanRoomCounterAnswer
        do {
            answer = try await persistence.counter(.init(operation: "key", contractID: contractID))
        } catch let error as EnclaveError where error.code == .unknownCall {
            return nil
        } catch {
            throw EnclaveError.callFailed("rollbackCounter: the key broker's counter did not answer its key")
        }
        guard answer.key.count == 64, let key = try? P256.Signing.PublicKey(rawRepresentation: answer.key) else {
            throw EnclaveError.malformedInput("rollbackCounter: the counter key is not a P-256 public key")
        }
        return key
    }

    /// Read the counter: (value, state digest hex).
    func read() async throws -> (value: UInt64, state: String) {
        let answer = try await ask(.init(operation: "read", contractID: contractID, nonce: Self.nonce()))
        return (answer.value, answer.state)
    }

    /// Move the counter from `expected` to `expected + 1` recording `state`, the request signed with `requestKey`
    /// (the counter request key the evidence binds: the broker moves the counter only for the enclave's own
    /// request).
    func increment(from expected: UInt64, state: String, signedBy requestKey: P256.Signing.PrivateKey) async throws {
        let nonce = Self.nonce()
        let message = CleanRoomCounterRequest.incrementMessage(
            contractID: contractID,
            expected: expected,
            state: state,
            nonce: nonce
        )
        let signature: P256.Signing.ECDSASignature
        do {
            signature = try requestKey.signature(for: message)
        } catch {
            throw EnclaveError.callFailed("rollbackCounter: the increment could not be signed")
        }
        let request = CleanRoomCounterRequest(
            operation: "increment",
            contractID: contractID,
            nonce: nonce,
            expected: expected,
            state: state,
            requestSignature: Array(signature.rawRepresentation)
        )
        let answer = try await ask(request)
        guard answer.value == expected + 1, answer.state == state else {
            throw EnclaveError.callFailed(
                "rollbackCounter: the counter is at \(answer.value), not \(expected + 1) with this state (another "
                    + "writer, or a refused increment)"
            )
        }
    }

    private func ask(_ request: CleanRoomCounterRequest) async throws -> CleanRoomCounterAnswer {
        let answer: CleanRoomCounterAnswer
        do {
            answer = try await call(request)
        } catch let error as EnclaveError {
            throw EnclaveError.callFailed(
                "rollbackCounter: the key broker's counter refused: \(error.reason.prefix(200))"
            )
        }
        let message = CleanRoomCounterRequest.message(
            contractID: contractID,
            value: answer.value,
            state: answer.state,
            nonce: answer.nonce
        )
        guard answer.signature.count == 64,
            let signature = try? P256.Signing.ECDSASignature(rawRepresentation: answer.signature),
            key.isValidSignature(signature, for: message)
        else {
            throw EnclaveError.invalidSignature(
                "counterForged: the counter answer is not signed by the key broker's key"
            )
        }
        guard answer.nonce == request.nonce else {
            throw EnclaveError.invalidSignature("counterReplay: the counter answer is for another request (old nonce)")
        }
        return answer
    }

    /// A fresh nonce: 16 random bytes, hex.
    static func nonce() -> String {
        SymmetricKey(size: .bits128).withUnsafeBytes { bytes in bytes.map { String(format: "%02x", $0) }.joined() }
    }
}

extension CleanRoomState {
    /// A budget over a ledger held in the enclave's memory (`ledger`: its canonical JSON, empty for a fresh one); the
    /// durable copy is the sealed state the host keeps, checked at restore.
    static func budget(contractID: Digest32, ledger: [UInt8]) throws(CleanRoomError) -> PrivacyBudget {
        var version: UInt64 = 0
        if !ledger.isEmpty {
            let parsed = try PrivacyBudget.Ledger(bytes: ledger)
            guard parsed.contractID == contractID else {
                throw CleanRoomError(.wrongContract, "the saved budget ledger belongs to another contract")
            }
            version = parsed.version
        }
        return PrivacyBudget(
            contractID: contractID,
            counter: InMemoryCounter(start: version),
            store: InMemoryLedgerStore(ledger.isEmpty ? nil : ledger),
            seal: { $0 },
            unseal: { $0 }
        )
    }

    /// Restore the durable state the host keeps, once per open room (before any load or query runs).
    ///
    /// A host without the state OCALLs (`unknownCall`) keeps nothing: the room runs in memory, as before durable
    /// state existed. A state that does not unseal, was sealed by a build below the contract's minimum security
    /// version or belongs to another contract is refused by name (`stateTampered`, `wrongContract`) and the room
    /// stays unusable until a later open restores it. A state that records halts restores them and refuses
    /// (`halted`): whatever halts the host passed at open, the contract stays halted.
    func restore(using persistence: RoomPersistence) async throws {
        try await gate.run {
            let room = try opened.withLock { current throws -> (id: Digest32, minimum: UInt16)? in
                guard let room = current else {
                    throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
                }
                return room.restored ? nil : (room.contract.id, room.contract.enclave.minSecurityVersion)
            }
            guard let room else { return }
            let (contractID, minimumVersion) = (room.id, room.minimum)
            let counter = try await RollbackCounter.key(contractID: contractID.hex, using: persistence).map {
                RollbackCounter(key: $0, contractID: contractID.hex, call: persistence.counter)
            }
            let blob: [UInt8]
            do {
                blob = try await persistence.load(contractID.hex)
            } catch let error as EnclaveError where error.code == .unknownCall {
                guard counter == nil else {
                    throw EnclaveError.callFailed("notRestored: the host has a rollback counter but keeps no state")
                }
                opened.withLock { $0?.restored = true }
                return
            }
            guard blob.count <= CleanRoomStateBlob.maxBytes else {
                throw EnclaveError.limitExceeded("limitExceeded: the saved state is over 1 MiB")
            }
            var state = DurableRoomState(contractID: contractID, generation: 0, ledger: [], head: nil)
            if !blob.isEmpty {
                let plaintext: [UInt8]
                let sealedVersion: UInt16
                do {
                    (plaintext, sealedVersion) = try await persistence.unseal(blob)
                } catch {
                    throw EnclaveError.invalidSignature(
                        "stateTampered: the saved clean room state does not unseal in this enclave"
                    )
                }
                // A build below the contract's minimum (same signer, an older and maybe flawed version) can seal
                // state this build can read: it is not the contract's clean room, so its state is not restored.
                guard sealedVersion >= minimumVersion else {
                    throw EnclaveError.invalidSignature(
                        "stateTampered: the saved clean room state was sealed by security version \(sealedVersion), "
                            + "below the contract's minimum \(minimumVersion)"
                    )
                }
                do throws(CleanRoomError) {
                    state = try DurableRoomState(bytes: plaintext)
                } catch {
                    throw Self.crossing(error)
                }
                guard state.contractID == contractID else {
                    throw EnclaveError.callFailed(
                        "wrongContract: the saved state belongs to contract \(state.contractID)"
                    )
                }
            }
            if let counter {
                // A state one ahead of the counter counts as the counter's generation: the next save overwrites it
                // and increments from there.
                state.generation = try await Self.check(state, saved: !blob.isEmpty, against: counter)
            }
            let budget: PrivacyBudget
            do throws(CleanRoomError) {
                budget = try Self.budget(contractID: contractID, ledger: state.ledger)
            } catch {
                throw Self.crossing(error)
            }
            opened.withLock { current in
                guard var room = current else { return }
                room.budget = budget
                room.generation = state.generation
                room.head = state.head
                room.durable = true
                room.counterKey = counter?.key
                room.restored = true
                room.uploads = state.uploads
                for halt in state.halts where !room.state.halts.contains(where: { $0.party == halt.party }) {
                    room.state.halts.append((halt.party, halt.reason))
                }
                if !state.halts.isEmpty { room.state.phase = .halted }
                current = room
            }
            // Halted before the restart: nothing opens, loads or runs, whatever halts the host passed.
            guard state.halts.isEmpty else {
                let by = state.halts.map { "\($0.party) (\($0.reason.prefix(200)))" }.joined(separator: ", ")
                throw EnclaveError.callFailed("halted: the contract was halted by \(by) (the clean room's saved state)")
            }
        }
    }

    /// Check the restored `state` against the broker's counter (which holds the generation of the last state saved
    /// and counted, and that state's digest); answers the generation to continue from.
    ///
    /// - Same generation, same digest: the latest state. A generation one ahead: the enclave saved it, then stopped
    ///   before the increment (no result of that run left: results leave only after the increment); it is kept as
    ///   the counter's generation (its spent ε stays spent) and the next save replaces it. Anything else is a
    ///   rollback (an older copy, a missing one, another fork), refused by name: nothing loads or runs.
    static func check(
        _ state: DurableRoomState,
        saved: Bool,
        against counter: RollbackCounter
    ) async throws -> UInt64 {
        let (value, recorded) = try await counter.read()
        guard saved else {
            guard value == 0 else {
                throw EnclaveError.callFailed(
                    "rollback: the saved state is missing but the key broker's counter is at \(value)"
                )
            }
            return 0
        }
        if state.generation == value, state.digest == recorded { return value }
        if value < UInt64.max, state.generation == value + 1 { return value }
        throw EnclaveError.callFailed(
            "rollback: the saved state is generation \(state.generation) but the key broker's counter is at \(value)"
                + (state.generation == value ? " with another state" : "") + " (an older or another copy was restored)"
        )
    }

    /// Save the durable state with `head` as the chain's head (nil: the room's current head), the ledger as the
    /// budget holds it now and the room's halts, then make `head` the room's; answers the generation saved (the
    /// room's current one when it keeps no durable state). Nothing is committed when the save fails: the caller must
    /// not release what depends on it (a run's result, a halt's acknowledgement). Call it inside ``gate``.
    @discardableResult
    func persist(head: DurableRoomState.Head?, using persistence: RoomPersistence?) async throws -> UInt64 {
        let (state, durable, counterKey, requestKey) = try opened.withLock {
            current throws -> (DurableRoomState, Bool, P256.Signing.PublicKey?, P256.Signing.PrivateKey) in
            guard let room = current else {
                throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
            }
            let ledger: [UInt8]
            do throws(CleanRoomError) {
                ledger = try room.budget.current().bytes
            } catch {
                throw Self.crossing(error)
            }
            let state = DurableRoomState(
                contractID: room.contract.id,
                generation: room.generation + 1,
                ledger: ledger,
                head: head ?? room.head,
                halts: room.state.halts.map { .init(party: $0.party, reason: $0.reason) },
                uploads: room.uploads
            )
            return (state, room.durable, room.counterKey, room.counterRequestKey)
        }
        if durable, let persistence {
            do {
                let sealed = try await persistence.seal(state.bytes)
                try await persistence.save(state.contractID.hex, sealed)
            } catch {
                throw EnclaveError.callFailed(
                    "stateNotSaved: the host did not keep the clean room's state, so the answer (a result or a halt's "
                        + "acknowledgement) is withheld"
                )
            }
            // Saved, then counted: a crash in between leaves a state one ahead of the counter, completed at the next
            // restore; the result leaves only once the counter moved.
            if let counterKey {
                let counter = RollbackCounter(
                    key: counterKey,
                    contractID: state.contractID.hex,
                    call: persistence.counter
                )
                try await counter.increment(from: state.generation - 1, state: state.digest, signedBy: requestKey)
            }
        }
        guard durable, persistence != nil else {
            if let head { opened.withLock { $0?.head = head } }
            return state.generation - 1
        }
        opened.withLock {
            $0?.generation = state.generation
            $0?.head = state.head
        }
        return state.generation
    }
}
