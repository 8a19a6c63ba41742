public import CleanRoom

/// The clean room's trusted core: runs approved queries over the loaded data sets and enforces the contract's
/// output rules before anything leaves.
///
/// What a run checks, in order, each refusal naming its rule:
/// 1. the contract is active (every party signed, nobody halted) — `contractState`;
/// 2. the query ID is approved (`approvedQueries`), the requester may run it (`runners`), the parameters are exactly
///    the declared ones with the declared types (`typedParameters`) — no SQL text is ever taken from a caller;
/// 3. the query's output columns pass `neverOutput` (no column whose origin is a forbidden column) and
///    `computedColumns` (a column computed by an expression, whose origin SQLite cannot tell, must be declared in
///    the query's `computed` list that every party signed), and carry the identity counts (`minIdentities`);
/// 4. SQLite runs it under the authorizer, the time limit and the memory limit;
/// 5. groups below the strictest owner's minimum of distinct identities are suppressed and counted;
/// 6. with differential privacy, the budget of every DP owner read is checked and spent (persisted, rollback
///    checked) before Laplace noise is added and the result is returned.
///
/// **How the engine knows each group's distinct identity count.** An approved query must output, for every data
/// set it reads, a column named `_ids_<dataset>` computed as `COUNT(DISTINCT <that set's identity column>)`
/// (qualified by the table or its alias). The engine checks this when it validates the query (the column exists,
/// is computed, and the SQL text has that exact aggregate under that name), uses the counts to suppress groups
/// and strips the columns from the output. This was chosen over rewriting the query: SQL rewriting needs a full
/// SQL parser inside the enclave and silently changes what the parties signed, whereas the reserved columns keep
/// the signed SQL exactly what runs, work for joins and any grouping, and cost one aggregate per data set.
/// Limit: the check is textual, so a contract whose parties signed a misleading SQL (e.g. the aggregate inside a
/// `CASE`) is the parties' responsibility; the engine still guarantees the rule on the numbers the query outputs.
public final class QueryEngine: Sendable {
    /// A request to run an approved query.
    public struct Request: Hashable, Sendable {
        /// The approved query's ID.
        public var queryID: String
        /// The party asking (authenticated by the caller, e.g. a signed request).
        public var runner: String
        /// The parameters by name.
        public var parameters: [String: SQLValue]

        /// Creates one from its members, each as documented on its property.
        public init(queryID: String, runner: String, parameters: [String: SQLValue]) {
            self.queryID = queryID
            self.runner = runner
            self.parameters = parameters
        }
    }

    /// A result that passed the output rules.
    public struct Outcome: Hashable, Sendable {
        /// Output column names (the identity count columns removed).
        public var columns: [String]
        /// The rows released.
        public var rows: [[SQLValue]]
        /// Groups suppressed for too few distinct identities.
        public var suppressedGroups: Int
        /// The minimum of distinct identities applied (the strictest owner's).
        public var minIdentities: Int64
        /// ε spent by this run, in thousandths (0 without differential privacy).
        public var epsilonSpentMilli: Int64
    }

    /// The contract.
    public let contract: Contract
    /// The database.
    public let database: CleanRoomDatabase
    private let state: ContractState
    private let budget: PrivacyBudget?

    /// An engine for an active contract.
    ///
    /// - Parameters:
    ///   - contract: the contract.
    ///   - state: its verified state (`ContractState.evaluate(_:signatures:halts:)`); runs refuse unless active.
    ///   - limits: per-query limits.
    ///   - budget: the privacy budget ledger; required when an output rule configures differential privacy.
    /// - Throws: `CleanRoomError/Code/engine` and the errors of ``CleanRoomDatabase/init(contract:limits:)``.
    public init(
        contract: Contract,
        state: ContractState,
        limits: CleanRoomDatabase.Limits = .init(),
        budget: PrivacyBudget? = nil
    ) throws(CleanRoomError) {
        if contract.outputRules.contains(where: { $0.privacy != nil }), budget == nil {
            throw CleanRoomError(.engine, "the contract configures differential privacy: a privacy budget is required")
        }
        if let budget, budget.contractID != contract.id {
            throw CleanRoomError(.wrongContract, "the privacy budget ledger is for another contract")
        }
        self.contract = contract
        self.state = state
        self.database = try CleanRoomDatabase(contract: contract, limits: limits)
        self.budget = budget
    }

    /// The strictest minimum of distinct identities among the owners of the data sets `query` reads.
    public func minIdentities(for query: Contract.Query) -> Int64 {
        query.reads.compactMap { contract.dataSet($0) }.compactMap { contract.outputRule($0.owner)?.minIdentities }
            .max() ?? 1
    }

    /// Check an approved query's output shape against the output rules without running it.
    ///
    /// - Throws: `CleanRoomError/Code/outputRule` naming `minIdentities`, `neverOutput`, `computedColumns` or
    ///   `differentialPrivacy`; `CleanRoomError/Code/accessDenied` from the authorizer.
    public func validate(_ query: Contract.Query) throws(CleanRoomError) {
        let (columns, origins) = try database.describe(query)
        _ = try shape(query, columns: columns, origins: origins)
    }

    /// Where each data set's identity count is among the output columns.
    private func shape(
        _ query: Contract.Query,
        columns: [String],
        origins: [String?]
    ) throws(CleanRoomError) -> [Int] {
        let forbidden = Set(contract.outputRules.flatMap(\.neverOutput))
        var countColumns: [Int] = []
        let normalizedSQL = Self.normalize(query.sql)
        for read in query.reads {
            let name = Contract.identityCountPrefix + read
            let indexes = columns.indices.filter { columns[$0].lowercased() == name.lowercased() }
            guard indexes.count == 1, origins[indexes[0]] == nil else {
                throw CleanRoomError(
                    .outputRule,
                    "minIdentities: query \(query.id) must output exactly one computed column \(name) = "
                        + "COUNT(DISTINCT <identity of \(read)>)"
                )
            }
            // Force-unwrap is safe: reads were validated against the data sets.
            let identity = contract.dataSet(read)!.identity.lowercased()
            guard Self.countsIdentity(normalizedSQL, dataSet: read.lowercased(), identity: identity, name: name) else {
                throw CleanRoomError(
                    .outputRule,
                    "minIdentities: query \(query.id): \(name) is not COUNT(DISTINCT \(read).\(identity))"
                )
            }
            countColumns.append(indexes[0])
        }
        for (index, column) in columns.enumerated() where !countColumns.contains(index) {
            if column.lowercased().hasPrefix(Contract.identityCountPrefix) {
                throw CleanRoomError(
                    .outputRule,
                    "minIdentities: query \(query.id) outputs \(column) for a data set it does not declare"
                )
            }
            if let origin = origins[index] {
                guard !forbidden.contains(origin) else {
                    throw CleanRoomError(.outputRule, "neverOutput: query \(query.id) outputs \(origin)")
                }
            } else if !query.computed.contains(column) {
                throw CleanRoomError(
                    .outputRule,
                    "computedColumns: query \(query.id) outputs the computed column \(column), which the contract "
                        + "does not declare in the query's computed list"
                )
            }
        }
        for noise in query.noise where !columns.contains(noise.column) {
            throw CleanRoomError(
                .outputRule,
                "differentialPrivacy: query \(query.id) declares noise on \(noise.column), not an output column"
            )
        }
        if !dpOwners(query).isEmpty {
            let noised = Set(query.noise.map(\.column))
            for column in query.computed where !noised.contains(column) {
                throw CleanRoomError(
                    .outputRule,
                    "differentialPrivacy: query \(query.id) reads data under differential privacy but its "
                        + "computed column \(column) has no noise"
                )
            }
        }
        return countColumns
    }

    /// Lower case, whitespace collapsed, no spaces around punctuation.
    static func normalize(_ sql: String) -> String {
        var out = ""
        var pendingSpace = false
        for character in sql.lowercased() {
            if character.isWhitespace {
                pendingSpace = true
                continue
            }
            if pendingSpace, let last = out.last, !"(),.".contains(last), !"(),.".contains(character) {
                out.append(" ")
            }
            pendingSpace = false
            out.append(character)
        }
        return out
    }

    /// Whether the normalized SQL has `count(distinct <q>.<identity>)as <name>` (normalized form) with `<q>` the data set or an
    /// alias of it (`<dataset> <q>` or `<dataset> as <q>`), or an unqualified identity when it reads one set.
    static func countsIdentity(_ sql: String, dataSet: String, identity: String, name: String) -> Bool {
        let suffix = ")as " + name.lowercased()
        var searchFrom = sql.startIndex
        while let start = sql.range(of: "count(distinct ", range: searchFrom..<sql.endIndex)
            ?? sql.range(of: "count(distinct", range: searchFrom..<sql.endIndex)
        {
            searchFrom = start.upperBound
            guard let close = sql.range(of: ")", range: start.upperBound..<sql.endIndex) else { return false }
            guard sql[close.lowerBound...].hasPrefix(suffix) else { continue }
            let inside = sql[start.upperBound..<close.lowerBound].trimmingSpaces
            let parts = inside.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 1 { return parts[0] == identity }
            guard parts.count == 2, parts[1] == identity else { continue }
            let qualifier = parts[0]
            if qualifier == dataSet { return true }
            for form in ["\(dataSet) \(qualifier)", "\(dataSet) as \(qualifier)"] {
                var from = sql.startIndex
                while let hit = sql.range(of: form, range: from..<sql.endIndex) {
                    from = hit.upperBound
                    let before = hit.lowerBound == sql.startIndex ? " " : sql[sql.index(before: hit.lowerBound)]
                    let after = hit.upperBound == sql.endIndex ? " " : sql[hit.upperBound]
                    if !(before.isLetter || before.isNumber || before == "_"),
                        !(after.isLetter || after.isNumber || after == "_")
                    {
                        return true
                    }
                }
            }
        }
        return false
    }

    private func dpOwners(_ query: Contract.Query) -> [(owner: String, privacy: Contract.Privacy)] {
        var owners: [(String, Contract.Privacy)] = []
        for read in query.reads {
            guard let owner = contract.dataSet(read)?.owner, let privacy = contract.outputRule(owner)?.privacy,
                !owners.contains(where: { $0.0 == owner })
            else { continue }
            owners.append((owner, privacy))
        }
        return owners
    }

    /// Check a request against the contract: approved query, allowed runner, exactly the declared parameters
    /// with their types.
    ///
    /// - Throws: `CleanRoomError/Code/queryNotApproved`, `CleanRoomError/Code/runnerNotAllowed`,
    ///   `CleanRoomError/Code/badParameter`.
    public func authorize(_ request: Request) throws(CleanRoomError) -> Contract.Query {
        guard let query = contract.query(request.queryID) else {
            throw CleanRoomError(.queryNotApproved, "approvedQueries: \(request.queryID) is not an approved query")
        }
        guard query.runners.contains(request.runner) else {
            throw CleanRoomError(.runnerNotAllowed, "runners: \(request.runner) may not run \(query.id)")
        }
        for parameter in query.parameters {
            guard let value = request.parameters[parameter.name] else {
                throw CleanRoomError(.badParameter, "typedParameters: :\(parameter.name) is missing")
            }
            guard value != .null, value.fits(parameter.type) else {
                throw CleanRoomError(
                    .badParameter,
                    "typedParameters: :\(parameter.name) must be a \(parameter.type.rawValue)"
                )
            }
        }
        for name in request.parameters.keys where !query.parameters.contains(where: { $0.name == name }) {
            throw CleanRoomError(.badParameter, "typedParameters: \(query.id) has no parameter :\(name)")
        }
        return query
    }

    /// Run a request through every check and rule.
    ///
    /// - Throws: the named refusal of the first rule that fails (see the type's discussion); nothing is returned
    ///   and no budget is spent then, except that a run refused after the budget was spent keeps it spent.
    public func run(_ request: Request) throws(CleanRoomError) -> Outcome {
        try state.requireActive()
        let query = try authorize(request)
        // One prepare: the output rules are checked on the prepared statement's columns before it runs.
        var columns: [String] = []
        var countColumns: [Int] = []
        let raw = try database.run(query, parameters: request.parameters) { names, origins throws(CleanRoomError) in
            columns = names
            countColumns = try shape(query, columns: names, origins: origins)
        }
        let minimum = minIdentities(for: query)

        var suppressed = 0
        var rows: [[SQLValue]] = []
        for row in raw.rows {
            let enough = countColumns.allSatisfy { index in
                if case .integer(let count) = row[index] { return count >= minimum }
                return false
            }
            if !enough {
                suppressed += 1
                continue
            }
            rows.append(row.enumerated().filter { !countColumns.contains($0.offset) }.map(\.element))
        }
        let outputColumns = columns.enumerated().filter { !countColumns.contains($0.offset) }.map(\.element)

        var epsilon: Int64 = 0
        let owners = dpOwners(query)
        if !owners.isEmpty {
            // Force-unwrap is safe: init requires a budget when any rule configures privacy.
            let budget = budget!
            epsilon = owners.map(\.privacy.epsilonMilli).min() ?? 0
            try budget.spend(epsilonMilli: epsilon, owners: owners.map { ($0.owner, $0.privacy.budgetMilli) })
            let scale = Double(epsilon) / 1000
            for noise in query.noise {
                guard let index = outputColumns.firstIndex(of: noise.column) else { continue }
                for row in rows.indices {
                    rows[row][index] = Laplace.noised(rows[row][index], scale: Double(noise.sensitivity) / scale)
                }
            }
        }
        return Outcome(
            columns: outputColumns,
            rows: rows,
            suppressedGroups: suppressed,
            minIdentities: minimum,
            epsilonSpentMilli: epsilon
        )
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
