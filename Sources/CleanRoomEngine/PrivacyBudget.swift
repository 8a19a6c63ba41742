public import CleanRoom
public import EnclaveCore
import Synchronization

/// A monotonic counter outside the enclave's sealed storage (later: held by the key broker), so that a host
/// restoring an older sealed ledger is caught.
public protocol MonotonicCounter: Sendable {
    /// The current value.
    func read() throws(CleanRoomError) -> UInt64
    /// Move from `expected` to `expected + 1` and return the new value; throw `CleanRoomError/Code/rollback` when
    /// the counter is not at `expected` (another writer, or a replay).
    func increment(from expected: UInt64) throws(CleanRoomError) -> UInt64
}

/// Where the sealed ledger is kept (the untrusted host).
public protocol LedgerStore: Sendable {
    /// The last sealed ledger saved, or nil if none.
    func load() throws(CleanRoomError) -> [UInt8]?
    /// Replace the sealed ledger.
    func save(_ sealed: [UInt8]) throws(CleanRoomError)
}

/// A counter in memory (tests, and a single-process demo).
public final class InMemoryCounter: MonotonicCounter {
    private let value: Mutex<UInt64>
    /// Creates one at `start` (0: a fresh ledger; a restored ledger's version when its durability is checked
    /// elsewhere).
    public init(start: UInt64 = 0) { value = Mutex(start) }
    public func read() -> UInt64 { value.withLock { $0 } }
    public func increment(from expected: UInt64) throws(CleanRoomError) -> UInt64 {
        try value.withLock { current throws(CleanRoomError) in
            guard current == expected else {
                throw CleanRoomError(.rollback, "privacyBudget: the counter is at \(current), not \(expected)")
            }
            current += 1
            return current
        }
    }
}

/// A ledger store in memory; ``load()`` and ``save(_:)`` let tests play the host (keep an old copy, restore it).
public final class InMemoryLedgerStore: LedgerStore {
    private let blob: Mutex<[UInt8]?>
    /// Creates one holding `sealed` (nil: empty).
    public init(_ sealed: [UInt8]? = nil) { blob = Mutex(sealed) }
    public func load() -> [UInt8]? { blob.withLock { $0 } }
    public func save(_ sealed: [UInt8]) { blob.withLock { $0 = sealed } }
}

/// One contract's differential privacy ledger: ε spent per owner, persisted sealed, versioned against a
/// monotonic counter.
///
/// Spending (``spend(epsilonMilli:owners:)``): load and unseal the ledger, refuse unless its version equals the
/// counter (an older copy restored by the host is a rollback), refuse unless every owner's budget has room,
/// increment the counter, save the new ledger sealed with that version. Only then may results leave. A crash
/// between the increment and the save leaves an older ledger behind: it is refused as a rollback too, so the
/// budget fails closed (no DP query runs) rather than forgetting spent ε.
public final class PrivacyBudget: Sendable {
    /// The ledger's plaintext.
    public struct Ledger: Hashable, Sendable {
        /// The contract.
        public var contractID: Digest32
        /// The counter value this ledger was written at.
        public var version: UInt64
        /// ε spent per owner, in thousandths.
        public var spentMilli: [String: Int64]

        /// Canonical JSON.
        public var bytes: [UInt8] {
            CanonicalJSON.object([
                "contract": .string(contractID.hex),
                "version": .integer(Int64(truncatingIfNeeded: version)),
                "spentMilli": .object(spentMilli.mapValues { .integer($0) }),
            ]).canonicalBytes
        }

        /// A ledger of `contractID` at `version` with `spentMilli` spent per owner.
        public init(contractID: Digest32, version: UInt64, spentMilli: [String: Int64]) {
            self.contractID = contractID
            self.version = version
            self.spentMilli = spentMilli
        }

        /// Parse a ledger's canonical JSON (``bytes``).
        ///
        /// - Throws: `CleanRoomError/Code/malformed` when it does not parse.
        public init(bytes: [UInt8]) throws(CleanRoomError) {
            guard case .object(let members) = try CanonicalJSON.parseCanonical(bytes), members.count == 3,
                case .string(let contract)? = members["contract"], let id = try? Digest32(hex: contract),
                case .integer(let version)? = members["version"], version >= 0,
                case .object(let spent)? = members["spentMilli"]
            else { throw CleanRoomError(.malformed, "privacyBudget: the ledger does not parse") }
            var spentMilli: [String: Int64] = [:]
            for (owner, value) in spent {
                guard case .integer(let number) = value, number >= 0 else {
                    throw CleanRoomError(.malformed, "privacyBudget: the ledger does not parse")
                }
                spentMilli[owner] = number
            }
            self.init(contractID: id, version: UInt64(version), spentMilli: spentMilli)
        }
    }

    /// The contract the ledger belongs to.
    public let contractID: Digest32
    private let counter: any MonotonicCounter
    private let store: any LedgerStore
    private let seal: @Sendable ([UInt8]) throws -> [UInt8]
    private let unseal: @Sendable ([UInt8]) throws -> [UInt8]
    private let lock = Mutex<Void>(())

    /// A budget ledger for `contractID`; `seal` and `unseal` are the enclave's sealing (an AEAD bound to the
    /// enclave's identity).
    public init(
        contractID: Digest32,
        counter: any MonotonicCounter,
        store: any LedgerStore,
        seal: @escaping @Sendable ([UInt8]) throws -> [UInt8],
        unseal: @escaping @Sendable ([UInt8]) throws -> [UInt8]
    ) {
        self.contractID = contractID
        self.counter = counter
        self.store = store
        self.seal = seal
        self.unseal = unseal
    }

    /// The current ledger, checked against the counter.
    ///
    /// - Throws: `CleanRoomError/Code/rollback` when the stored ledger is not the latest one.
    public func current() throws(CleanRoomError) -> Ledger {
        let version = try counter.read()
        guard let sealed = try store.load() else {
            guard version == 0 else {
                throw CleanRoomError(.rollback, "privacyBudget: the ledger is missing but the counter is at \(version)")
            }
            return Ledger(contractID: contractID, version: 0, spentMilli: [:])
        }
        let plaintext: [UInt8]
        do {
            plaintext = try unseal(sealed)
        } catch {
            throw CleanRoomError(.rollback, "privacyBudget: the sealed ledger does not unseal")
        }
        let ledger = try Ledger(bytes: plaintext)
        guard ledger.contractID == contractID else {
            throw CleanRoomError(.wrongContract, "privacyBudget: the ledger belongs to another contract")
        }
        guard ledger.version == version else {
            throw CleanRoomError(
                .rollback,
                "privacyBudget: the stored ledger is version \(ledger.version) but the counter is at \(version) "
                    + "(an older copy was restored)"
            )
        }
        return ledger
    }

    /// ε left for `owner` with budget `budgetMilli`.
    public func remainingMilli(owner: String, budgetMilli: Int64) throws(CleanRoomError) -> Int64 {
        try lock.withLock { _ throws(CleanRoomError) in budgetMilli - (try current().spentMilli[owner] ?? 0) }
    }

    /// Spend `epsilonMilli` on each owner, or nothing if any owner's budget lacks room.
    ///
    /// - Throws: `CleanRoomError/Code/budgetExhausted` naming the owner, `CleanRoomError/Code/rollback`.
    public func spend(epsilonMilli: Int64, owners: [(owner: String, budgetMilli: Int64)]) throws(CleanRoomError) {
        try lock.withLock { _ throws(CleanRoomError) in
            var ledger = try current()
            for (owner, budget) in owners {
                let spent = ledger.spentMilli[owner] ?? 0
                guard spent + epsilonMilli <= budget else {
                    throw CleanRoomError(
                        .budgetExhausted,
                        "privacyBudget: \(owner)'s budget has \(budget - spent)/1000 ε left, the query needs "
                            + "\(epsilonMilli)/1000"
                    )
                }
                ledger.spentMilli[owner] = spent + epsilonMilli
            }
            ledger.version = try counter.increment(from: ledger.version)
            let sealed: [UInt8]
            do {
                sealed = try seal(ledger.bytes)
            } catch {
                throw CleanRoomError(.engine, "privacyBudget: cannot seal the ledger")
            }
            try store.save(sealed)
        }
    }
}
