/// Whether a contract is in force: draft until every party signed, active, or halted.
///
/// Built by ``evaluate(_:signatures:halts:)`` from a contract and the signature and halt documents gathered for
/// it; any invalid document is an error (fail closed), never silently ignored.
public struct ContractState: Hashable, Sendable, CustomStringConvertible {
    /// The state.
    public enum Phase: String, Hashable, Sendable {
        /// Some party has not signed yet.
        case draft
        /// Every party signed and nobody halted.
        case active
        /// A party halted it.
        case halted
    }

    /// The phase.
    public var phase: Phase
    /// The parties that signed, sorted.
    public var signedBy: [String]
    /// The parties that have not signed, sorted.
    public var missing: [String]
    /// The halt statements' parties and reasons.
    public var halts: [(party: String, reason: String)]

    public static func == (lhs: ContractState, rhs: ContractState) -> Bool {
        lhs.phase == rhs.phase && lhs.signedBy == rhs.signedBy && lhs.missing == rhs.missing
            && lhs.halts.map(\.party) == rhs.halts.map(\.party) && lhs.halts.map(\.reason) == rhs.halts.map(\.reason)
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(phase)
        hasher.combine(signedBy)
    }

    /// Evaluate `contract` with its signatures and halt statements.
    ///
    /// A halt counts even when not every party signed (halted wins over draft).
    /// - Throws: the first invalid document's error (``ContractSignature/verify(for:)``,
    ///   ``HaltStatement/verify(for:)``), or ``CleanRoomError/Code/invalidContract`` for two signatures of one party.
    public static func evaluate(
        _ contract: Contract,
        signatures: [ContractSignature],
        halts: [HaltStatement] = []
    ) throws(CleanRoomError) -> ContractState {
        var signed: Set<String> = []
        for signature in signatures {
            try signature.verify(for: contract)
            guard signed.insert(signature.party).inserted else {
                throw CleanRoomError(.invalidContract, "two signatures by \(signature.party)")
            }
        }
        for halt in halts { try halt.verify(for: contract) }
        let missing = contract.parties.map(\.name).filter { !signed.contains($0) }.sorted()
        let phase: Phase = !halts.isEmpty ? .halted : missing.isEmpty ? .active : .draft
        return ContractState(
            phase: phase,
            signedBy: signed.sorted(),
            missing: missing,
            halts: halts.map { ($0.party, $0.reason) }
        )
    }

    /// Throw unless the contract is active: what everything that runs under a contract calls first.
    ///
    /// - Throws: ``CleanRoomError/Code/halted`` or ``CleanRoomError/Code/notActive``.
    public func requireActive() throws(CleanRoomError) {
        switch phase {
        case .active: return
        case .halted:
            let by = halts.map { "\($0.party) (\($0.reason))" }.joined(separator: ", ")
            throw CleanRoomError(.halted, "the contract was halted by \(by)")
        case .draft:
            throw CleanRoomError(.notActive, "the contract is not signed by \(missing.joined(separator: ", ")) yet")
        }
    }

    public var description: String {
        switch phase {
        case .active: return "active (signed by all: \(signedBy.joined(separator: ", ")))"
        case .draft: return "draft (waiting for \(missing.joined(separator: ", ")))"
        case .halted: return "halted by \(halts.map(\.party).joined(separator: ", "))"
        }
    }
}
