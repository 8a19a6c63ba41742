import CleanRoom
import CleanRoomEngine
import CleanRoomInterface
import EnclaveCore

/// The clean room's durable state: what must survive a restart of the host and the enclave.
///
/// It holds the privacy budget ledger (ε spent per owner, its version) and the receipt chain's head (the last
/// receipt's sequence and digest), under a generation number that grows by one at every save. The enclave seals it
/// to its signer (any enclave of the contract's signer and product at the same or a higher security version can
/// read it) and the untrusted host keeps it (``CleanRoomSaveState``, ``CleanRoomLoadState``).
struct DurableRoomState: Equatable, Sendable {
    /// The last receipt made: the next one follows it.
    struct Head: Equatable, Sendable {
        var sequence: Int64
        var digest: Digest32
    }

    var contractID: Digest32
    var generation: UInt64
    /// The budget ledger's canonical JSON (`PrivacyBudget.Ledger`), empty before the first DP query.
    var ledger: [UInt8]
    var head: Head?

    static let domain = "EnclaveKit.cleanroom.state.v1"

    var bytes: [UInt8] {
        var members: [String: CanonicalJSON] = [
            "domain": .string(Self.domain),
            "contract": .string(contractID.hex),
            "generation": .integer(Int64(truncatingIfNeeded: generation)),
            "ledger": .string(Base64URL.encode(ledger)),
        ]
        if let head {
            members["head"] = .object(["sequence": .integer(head.sequence), "digest": .string(head.digest.hex)])
        }
        return CanonicalJSON.object(members).canonicalBytes
    }

    init(contractID: Digest32, generation: UInt64, ledger: [UInt8], head: Head?) {
        self.contractID = contractID
        self.generation = generation
        self.ledger = ledger
        self.head = head
    }

    init(bytes: [UInt8]) throws(CleanRoomError) {
        guard case .object(let members) = try CanonicalJSON.parseCanonical(bytes),
            members.keys.allSatisfy(["domain", "contract", "generation", "ledger", "head"].contains),
            case .string(Self.domain)? = members["domain"],
            case .string(let contract)? = members["contract"], let id = try? Digest32(hex: contract),
            case .integer(let generation)? = members["generation"], generation >= 0,
            case .string(let ledgerText)? = members["ledger"], let ledger = Base64URL.decode(ledgerText)
        else { throw CleanRoomError(.malformed, "the clean room's saved state does not parse") }
        var head: Head?
        if let value = members["head"] {
            guard case .object(let fields) = value, fields.count == 2,
                case .integer(let sequence)? = fields["sequence"], sequence >= 0,
                case .string(let digest)? = fields["digest"], let digestValue = try? Digest32(hex: digest)
            else { throw CleanRoomError(.malformed, "the clean room's saved chain head does not parse") }
            head = Head(sequence: sequence, digest: digestValue)
        }
        self.init(contractID: id, generation: UInt64(generation), ledger: ledger, head: head)
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
    /// Unseal what ``seal`` made; throws for anything else.
    var unseal: @Sendable ([UInt8]) async throws -> [UInt8]
    /// The host's copy for a contract (hex ID); empty when none. Throws `unknownCall` when the host keeps none.
    var load: @Sendable (String) async throws -> [UInt8]
    /// Have the host keep `blob` for a contract (hex ID), durably.
    var save: @Sendable (String, [UInt8]) async throws -> Void
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
    /// state existed. A state that does not unseal or belongs to another contract is refused by name
    /// (`stateTampered`, `wrongContract`) and the room stays unusable until a later open restores it.
    func restore(using persistence: RoomPersistence) async throws {
        try await gate.run {
            let contractID = try opened.withLock { current throws -> Digest32? in
                guard let room = current else {
                    throw EnclaveError.callFailed("notActive: no contract is open in this clean room")
                }
                return room.restored ? nil : room.contract.id
            }
            guard let contractID else { return }
            let blob: [UInt8]
            do {
                blob = try await persistence.load(contractID.hex)
            } catch let error as EnclaveError where error.code == .unknownCall {
                opened.withLock { $0?.restored = true }
                return
            }
            guard blob.count <= CleanRoomStateBlob.maxBytes else {
                throw EnclaveError.limitExceeded("limitExceeded: the saved state is over 1 MiB")
            }
            var state = DurableRoomState(contractID: contractID, generation: 0, ledger: [], head: nil)
            if !blob.isEmpty {
                let plaintext: [UInt8]
                do {
                    plaintext = try await persistence.unseal(blob)
                } catch {
                    throw EnclaveError.invalidSignature(
                        "stateTampered: the saved clean room state does not unseal in this enclave"
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
            let budget: PrivacyBudget
            do throws(CleanRoomError) {
                budget = try Self.budget(contractID: contractID, ledger: state.ledger)
            } catch {
                throw Self.crossing(error)
            }
            opened.withLock {
                $0?.budget = budget
                $0?.generation = state.generation
                $0?.head = state.head
                $0?.durable = true
                $0?.restored = true
            }
        }
    }

    /// Save the durable state with `head` as the chain's head (the ledger as the budget holds it now), then make
    /// `head` the room's. Nothing is committed when the save fails: the caller must not release the run's result.
    func persist(head: DurableRoomState.Head, using persistence: RoomPersistence?) async throws {
        let (state, durable) = try opened.withLock { current throws -> (DurableRoomState, Bool) in
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
                head: head
            )
            return (state, room.durable)
        }
        if durable, let persistence {
            do {
                let sealed = try await persistence.seal(state.bytes)
                try await persistence.save(state.contractID.hex, sealed)
            } catch {
                throw EnclaveError.callFailed(
                    "stateNotSaved: the host did not keep the clean room's state, so the result is withheld"
                )
            }
        }
        opened.withLock {
            $0?.generation = state.generation
            $0?.head = head
        }
    }
}
