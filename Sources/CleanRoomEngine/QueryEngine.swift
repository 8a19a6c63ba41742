public import CleanRoom

/// The clean room's trusted core: runs approved queries over the loaded data sets and enforces the contract's
/// output rules before anything leaves.
///
/// What a run checks, in order, each refusal naming its rule:
/// 1. the contract is active (every party signed, nobody halted) — `contractState`;
/// 2. the query ID is approved (`approvedQueries`), the requester may run it (`runners`), the parameters are exactly
///    the declared ones with the declared types (`typedParameters`) — no SQL text is ever taken from a caller;
/// 3. the SQL is not a compound SELECT (`compoundSelect`: no `UNION`, `INTERSECT`, `EXCEPT`, `VALUES` list or
///    recursive CTE — SQLite reports a compound's column names and origins from one arm only, which every rule
///    below relies on); its output column names are unique, case-insensitively (`duplicateColumns`: the rules and
///    the noise go by name); the output columns pass `neverOutput` (no column whose origin is a forbidden column)
///    and `computedColumns` (a column computed by an expression, whose origin SQLite cannot tell, must be declared
///    in the query's `computed` list that every party signed), a raw column must be grouped by (`groupedColumns`:
///    written exactly as a `GROUP BY` term, or named by its ordinal — every approved query aggregates, and SQLite
///    would output one arbitrary record's value for a "bare" column), the identity counts are there
///    (`minIdentities`), and every raw output column, `GROUP BY` term and name in a computed column comes from the
///    very table instance whose identities are counted (`countedInstance`: not another alias of a self-join, a
///    subquery or a CTE, whose values could be one record's while the count covers the whole counted instance);
///    nothing but the records chooses which groups are released (`checkRelease(_:tokens:top:probe:)`): no `LIMIT`
///    or `OFFSET` (`limitOffset`), a subquery only as a `FROM` item or CTE (`subqueries`), in `HAVING` a name only
///    inside an aggregate or as a `GROUP BY` term (`groupedColumns`), and under differential privacy no aggregate
///    in `HAVING` (`differentialPrivacy`);
/// 4. with differential privacy, the budget of every DP owner read is checked and spent (persisted, rollback
///    checked) before the query runs, so a run that fails costs ε too;
/// 5. SQLite runs it under the authorizer, the time limit and the memory limit;
/// 6. groups below the strictest owner's minimum of distinct identities are suppressed and counted;
/// 7. with differential privacy, Laplace noise is added; the released rows are put in the engine's canonical order
///    (``canonicalOrder(_:)``: SQLite's order, which `ORDER BY` could steer, never leaves) and returned.
///
/// **How the engine knows each group's distinct identity count.** An approved query must output, for every data
/// set it reads, a column named `_ids_<dataset>` computed as `COUNT(DISTINCT <q>.<identity>)`, where `<q>` is that
/// data set's table (or an alias of it) in the query's own `FROM` — not a subquery or CTE, which could rename or
/// pick the values — and the aggregate is one of the query's own result columns (outside every parenthesis, so not
/// a count made in a subquery and attached to single records). The unqualified `COUNT(DISTINCT <identity>)` is
/// accepted only when the query reads one data set. The engine finds the aggregate in SQLite's tokens of the SQL
/// (`Contract.SQLTokens`) and lets SQLite resolve the names: it prepares — never runs — the SQL with the aggregate
/// replaced by its argument, whose origin must be `<dataset>.<identity>`, and by `<q>.rowid`, whose origin must be
/// `<dataset>.rowid` (only a table has one; no query may read it, so a subquery cannot pass one through). The
/// engine uses the counts to suppress groups and strips the columns from the output. This was chosen over
/// rewriting the query: SQL rewriting needs a full SQL parser inside the enclave and silently changes what the
/// parties signed, whereas the reserved columns keep the signed SQL exactly what runs, work for joins and any
/// grouping, and cost one aggregate per data set.
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
        /// The rows released, in the engine's canonical order (``QueryEngine/canonicalOrder(_:)``), whatever the
        /// query's `ORDER BY`.
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
    /// - Throws: `CleanRoomError/Code/outputRule` naming `compoundSelect`, `sqlText`, `duplicateColumns`,
    ///   `minIdentities`, `neverOutput`, `computedColumns`, `groupedColumns`, `countedInstance`, `limitOffset`,
    ///   `subqueries` or `differentialPrivacy`;
    ///   `CleanRoomError/Code/accessDenied` from the authorizer.
    public func validate(_ query: Contract.Query) throws(CleanRoomError) {
        let tokens = try Self.tokens(query)
        try database.describe(query) { columns, origins, probe throws(CleanRoomError) in
            _ = try shape(query, tokens: tokens, columns: columns, origins: origins, probe: probe)
        }
    }

    /// SQLite's tokens of the query's SQL, refusing compound SELECTs and SQL SQLite would not read whole.
    static func tokens(_ query: Contract.Query) throws(CleanRoomError) -> Contract.SQLTokens {
        let tokens = Contract.SQLTokens(query.sql)
        guard !tokens.hasNUL, tokens.illegal == nil else {
            throw CleanRoomError(
                .outputRule,
                "sqlText: query \(query.id): the SQL has a NUL byte or a token SQLite cannot read"
            )
        }
        if let keyword = tokens.compoundOperator {
            throw CleanRoomError(
                .outputRule,
                "compoundSelect: query \(query.id) uses \(keyword); compound SELECTs (UNION, INTERSECT, EXCEPT, "
                    + "VALUES lists, recursive CTEs) are refused, because SQLite reports a compound's column names and "
                    + "origins from one arm only"
            )
        }
        return tokens
    }

    /// Where each data set's identity count is among the output columns.
    private func shape(
        _ query: Contract.Query,
        tokens: Contract.SQLTokens,
        columns: [String],
        origins: [String?],
        probe: CleanRoomDatabase.Probe
    ) throws(CleanRoomError) -> [Int] {
        // First: every rule below reads the clauses as `topLevel` cuts them.
        try checkClauses(query, tokens: tokens)
        var seen: Set<String> = []
        for column in columns where !seen.insert(column.lowercased()).inserted {
            throw CleanRoomError(
                .outputRule,
                "duplicateColumns: query \(query.id) outputs more than one column named \(column) (the output rules "
                    + "and the noise go by name)"
            )
        }
        let forbidden = Set(contract.outputRules.flatMap(\.neverOutput))
        var countColumns: [Int] = []
        var counts: [String: (index: Int, count: IdentityCount)] = [:]
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
            let count = try checkIdentityCount(query, read: read, name: name, tokens: tokens, probe: probe)
            counts[read] = (indexes[0], count)
            countColumns.append(indexes[0])
        }
        let grouped = Self.groupedColumns(tokens, count: columns.count)
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
                guard grouped.contains(index) else {
                    throw CleanRoomError(
                        .outputRule,
                        "groupedColumns: query \(query.id) outputs \(column) (\(origin)), which is neither computed nor "
                            + "written exactly as a GROUP BY term: in an aggregate query SQLite would output the value "
                            + "of one arbitrary record of the group"
                    )
                }
            } else if !query.computed.contains(column) {
                throw CleanRoomError(
                    .outputRule,
                    "computedColumns: query \(query.id) outputs the computed column \(column), which the contract "
                        + "does not declare in the query's computed list"
                )
            }
        }
        try checkInstances(query, tokens: tokens, columns: columns, origins: origins, counts: counts, probe: probe)
        // Force-unwrap is safe: checkInstances refused a query whose own SELECT cannot be cut into clauses.
        try checkRelease(query, tokens: tokens, top: Self.topLevel(tokens)!, probe: probe)
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

    /// The query's own clauses, cut where SQLite's tokens are at depth 0 (outside every parenthesis, so not in a CTE
    /// body, a subquery or an argument list).
    struct TopLevel {
        /// The result columns, each as written (with its alias).
        var results: [[Contract.SQLTokens.Token]]
        /// The `FROM` clause's tokens (empty without one).
        var from: [Contract.SQLTokens.Token]
        /// The `GROUP BY` terms (empty without one).
        var groupTerms: [[Contract.SQLTokens.Token]]
        /// The index of the query's own `SELECT` among SQLite's tokens.
        var select: Int
        /// The token indexes of the `FROM` clause (after `FROM`), if any.
        var fromIndexes: Range<Int>?
        /// The token indexes of the `HAVING` expression (after `HAVING`), if any.
        var havingIndexes: Range<Int>?
    }

    /// The query's own `SELECT` (the first at depth 0: CTE bodies are in parentheses) cut into its clauses.
    static func topLevel(_ sql: Contract.SQLTokens) -> TopLevel? {
        let tokens = sql.tokens
        guard let select = tokens.firstIndex(where: { $0.depth == 0 && sql.word($0) == "SELECT" }) else { return nil }
        let clauseWords: Set<String> = ["FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT"]
        // The token indexes from `start` to the next clause at depth 0 (or the `;` that ends the statement).
        func end(from start: Int) -> Int {
            var index = start
            while index < tokens.count {
                if tokens[index].depth == 0, let word = sql.word(tokens[index]), clauseWords.contains(word) { break }
                if tokens[index].depth == 0, sql.isPunctuation(tokens[index], ";") { break }
                index += 1
            }
            return max(start, index)
        }
        // The tokens from `start` to the next clause at depth 0.
        func span(from start: Int) -> [Contract.SQLTokens.Token] {
            Array(tokens[min(start, tokens.count)..<end(from: start)])
        }
        // The same, cut at the commas at depth 0.
        func clause(from start: Int) -> [[Contract.SQLTokens.Token]] {
            var items: [[Contract.SQLTokens.Token]] = [[]]
            for token in span(from: start) {
                if token.depth == 0, sql.isPunctuation(token, ",") {
                    items.append([])
                } else {
                    items[items.count - 1].append(token)
                }
            }
            return items
        }
        var first = select + 1
        if first < tokens.count, let word = sql.word(tokens[first]), word == "DISTINCT" || word == "ALL" { first += 1 }
        let results = clause(from: first)
        var from: [Contract.SQLTokens.Token] = []
        var fromIndexes: Range<Int>?
        if let start = tokens.indices.first(where: {
            $0 > select && tokens[$0].depth == 0 && sql.word(tokens[$0]) == "FROM"
        }) {
            from = span(from: start + 1)
            fromIndexes = (start + 1)..<end(from: start + 1)
        }
        var havingIndexes: Range<Int>?
        if let having = tokens.indices.first(where: {
            $0 > select && tokens[$0].depth == 0 && sql.word(tokens[$0]) == "HAVING"
        }) {
            havingIndexes = (having + 1)..<end(from: having + 1)
        }
        var groupTerms: [[Contract.SQLTokens.Token]] = []
        if let group = tokens.indices.first(where: {
            tokens[$0].depth == 0 && sql.word(tokens[$0]) == "GROUP" && $0 + 1 < tokens.count
                && sql.word(tokens[$0 + 1]) == "BY"
        }) {
            groupTerms = clause(from: group + 2)
        }
        return TopLevel(
            results: results,
            from: from,
            groupTerms: groupTerms,
            select: select,
            fromIndexes: fromIndexes,
            havingIndexes: havingIndexes
        )
    }

    /// A plain column reference (`c` or `q.c`), with the alias of a result column (`[AS] alias`) first removed when
    /// `alias` is true; nil for anything else.
    static func reference(
        _ item: [Contract.SQLTokens.Token],
        _ sql: Contract.SQLTokens,
        alias: Bool
    ) -> (qualifier: Contract.SQLTokens.Token?, column: Contract.SQLTokens.Token)? {
        var reference = item
        if alias, reference.count >= 2, sql.identifier(reference[reference.count - 1]) != nil {
            let before = reference[reference.count - 2]
            if sql.word(before) == "AS" {
                reference.removeLast(2)
            } else if !sql.isPunctuation(before, ".") {
                reference.removeLast()
            }
        }
        if reference.count == 1, sql.identifier(reference[0]) != nil { return (nil, reference[0]) }
        if reference.count == 3, sql.identifier(reference[0]) != nil, sql.isPunctuation(reference[1], "."),
            sql.identifier(reference[2]) != nil
        {
            return (reference[0], reference[2])
        }
        return nil
    }

    /// A result column without its alias: `AS alias`, or a last name right after what ends an expression (`)`, a
    /// literal, a quoted identifier, `END`, or `q.c`). When unsure, the name is kept (and checked as a name).
    static func withoutAlias(
        _ item: [Contract.SQLTokens.Token],
        _ sql: Contract.SQLTokens
    ) -> [Contract.SQLTokens.Token] {
        guard item.count >= 2, sql.identifier(item[item.count - 1]) != nil else { return item }
        let before = item[item.count - 2]
        if sql.word(before) == "AS" { return Array(item.dropLast(2)) }
        let endsExpression =
            sql.isPunctuation(before, ")") || [.number, .string, .blob, .quotedIdentifier].contains(before.kind)
            || sql.word(before) == "END"
            || (item.count >= 3 && sql.isPunctuation(item[item.count - 3], ".") && sql.identifier(before) != nil)
        return endsExpression ? Array(item.dropLast()) : item
    }

    /// The indexes of the query's own result columns that are a plain column reference (`c` or `q.c`, with or
    /// without an alias) written exactly as one of the query's own `GROUP BY` terms (identifiers compared as SQLite
    /// compares them), or named by a `GROUP BY` ordinal. Every approved query aggregates (it outputs identity counts),
    /// so a raw column not among these is a "bare column": SQLite outputs one arbitrary record's value for it (the
    /// record with the largest value next to `MAX`). Anything else is left out (refused if it has an origin): a
    /// scalar subquery, a `*`, or a column grouped under another spelling or through an alias.
    static func groupedColumns(_ sql: Contract.SQLTokens, count: Int) -> Set<Int> {
        guard let top = topLevel(sql), top.results.count == count, !top.groupTerms.isEmpty else { return [] }
        // A token as SQLite compares it: identifiers unquoted and lower-cased, other tokens as written.
        func key(_ token: Contract.SQLTokens.Token) -> String {
            sql.identifier(token).map { "id:" + $0 } ?? "tk:" + sql.text(token)
        }
        let termKeys = Set(top.groupTerms.map { $0.map(key) })
        var ordinals: Set<Int> = []
        for term in top.groupTerms where term.count == 1 && term[0].kind == .number {
            if let ordinal = Int(sql.text(term[0])) { ordinals.insert(ordinal - 1) }
        }
        var grouped: Set<Int> = []
        for (index, item) in top.results.enumerated() {
            guard let reference = reference(item, sql, alias: true) else { continue }
            let written = [reference.qualifier, reference.column].compactMap { $0 }.map(key)
            let spelled = reference.qualifier == nil ? written : [written[0], "tk:.", written[1]]
            if ordinals.contains(index) || termKeys.contains(spelled) { grouped.insert(index) }
        }
        return grouped
    }

    /// Whether the `FROM` clause is one table and nothing else: `t`, `t q` or `t AS q`.
    static func isSingleTable(_ from: [Contract.SQLTokens.Token], _ sql: Contract.SQLTokens) -> Bool {
        guard from.allSatisfy({ $0.depth == 0 && sql.identifier($0) != nil }) else { return false }
        switch from.count {
        case 1, 2: return sql.word(from[0]) != "AS" && (from.count == 1 || sql.word(from[1]) != "AS")
        case 3: return sql.word(from[1]) == "AS"
        default: return false
        }
    }

    /// Check that every raw output column and every `GROUP BY` term comes from the very table instance whose
    /// identities `_ids_<set>` counts (`countedInstance`). Otherwise a self-join, a subquery or a CTE in `FROM` lets a
    /// group's count cover every identity of the counted instance while the released value comes from another
    /// instance, possibly one record: `SELECT a2.amount, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2
    /// GROUP BY a2.amount`.
    ///
    /// - With one table in `FROM` (`t`, `t q`, `t AS q`), everything comes from it (the identity count proved it is
    ///   the data set's table); a raw column or term may be written either way.
    /// - Otherwise it must be written `q.c`, where `q` is the qualifier of the count of one data set; SQLite's
    ///   `q.*` (in place of the count, prepared and never run) must expand to exactly that set's columns — no other
    ///   `FROM` item is named `q`.
    /// - In both cases `q.rowid` (or `rowid`) in place of the count must be the set's rowid (a subquery or CTE has
    ///   none), and a raw column's origin must be in that set.
    /// - A `GROUP BY` term is such a reference, or an ordinal naming a raw result column; an expression or an
    ///   ordinal naming a computed column only with one table in `FROM`. No result column and no `GROUP BY` term may
    ///   hold a subquery, which could read any instance.
    /// - With more than one `FROM` item, a computed column names only `q.c` of counted instances too (an aggregate of
    ///   another instance, or a bare expression, one arbitrary record of it, would release what the counts do not
    ///   cover).
    private func checkInstances(
        _ query: Contract.Query,
        tokens: Contract.SQLTokens,
        columns: [String],
        origins: [String?],
        counts: [String: (index: Int, count: IdentityCount)],
        probe: CleanRoomDatabase.Probe
    ) throws(CleanRoomError) {
        func refuse(_ why: String) -> CleanRoomError {
            CleanRoomError(
                .outputRule,
                "countedInstance: query \(query.id): \(why); a raw output column or GROUP BY term must come from the "
                    + "table instance whose identities _ids_<dataset> counts"
            )
        }
        guard let top = Self.topLevel(tokens), top.results.count == columns.count else {
            throw refuse("its result columns cannot be told apart")
        }
        for item in top.results + top.groupTerms where item.contains(where: { tokens.word($0) == "SELECT" }) {
            throw refuse("a result column or GROUP BY term holds a subquery, which can read another instance")
        }
        let single = Self.isSingleTable(top.from, tokens)
        var unique: Set<String> = []
        func text(_ item: [Contract.SQLTokens.Token]) -> String {
            guard let first = item.first, let last = item.last else { return "" }
            return String(decoding: tokens.bytes[first.range.lowerBound..<last.range.upperBound], as: UTF8.self)
        }
        // Replaces the count of `set` (`range` of it) with `replacement` and lets SQLite describe the result.
        func describe(
            _ set: String,
            _ range: Range<Int>,
            _ replacement: [UInt8]
        ) throws(CleanRoomError) -> (columns: [String], origins: [String?]) {
            let sql = Array(tokens.bytes[..<range.lowerBound]) + replacement + Array(tokens.bytes[range.upperBound...])
            do {
                return try probe(String(decoding: sql, as: UTF8.self), set)
            } catch {
                throw refuse("SQLite does not resolve it in the query's own FROM (\(error.reason))")
            }
        }
        func check(
            _ reference: (qualifier: Contract.SQLTokens.Token?, column: Contract.SQLTokens.Token),
            origin: String?,
            what: String
        ) throws(CleanRoomError) {
            let set: String
            if single {
                guard query.reads.count == 1 else { throw refuse("\(what): the query reads more than one data set") }
                set = query.reads[0]
            } else {
                guard let qualifier = reference.qualifier.flatMap({ tokens.identifier($0) }) else {
                    throw refuse("\(what) is not qualified, and FROM has more than one table")
                }
                guard let found = query.reads.first(where: { counts[$0]?.count.qualifierName == qualifier }) else {
                    throw refuse("\(what) is qualified by \(qualifier), which no identity count counts")
                }
                set = found
            }
            // Force-unwrap is safe: shape found a count for every read.
            let counted = counts[set]!
            if let origin, origin.split(separator: ".").first?.lowercased() != set.lowercased() {
                throw refuse("\(what) comes from \(origin), not from \(set)")
            }
            if !single, !unique.contains(set) {
                // Force-unwraps are safe: the qualifier matched, and reads were validated against the data sets.
                let qualifier = Array(tokens.bytes[counted.count.qualifier!])
                let expected = contract.dataSet(set)!.columns.map { "\(set).\($0.name)".lowercased() }
                let star = try describe(set, counted.count.whole, qualifier + Array(".*".utf8))
                let expanded =
                    star.origins.count == columns.count - 1 + expected.count
                    ? star.origins[counted.index..<(counted.index + expected.count)].map { $0?.lowercased() } : []
                guard expanded == expected else {
                    throw refuse("\(text([reference.qualifier!])) names more than the data set's table in FROM")
                }
                unique.insert(set)
            }
            let rowid =
                (reference.qualifier.map { Array(tokens.bytes[$0.range]) + Array(".".utf8) } ?? [])
                + Array("rowid".utf8)
            let described = try describe(set, counted.count.aggregate, rowid)
            guard described.origins.indices.contains(counted.index),
                described.origins[counted.index]?.lowercased() == "\(set).rowid".lowercased()
            else { throw refuse("\(what) does not come from the table \(set) itself (a subquery or CTE?)") }
        }
        // A computed column of a query with more than one FROM item: every name in it must be `q.c` of a counted
        // instance. A word that is not a function's name is put alone in place of a count: if SQLite resolves it to
        // a column, it is an unqualified column reference (keywords, type and collation names do not resolve).
        func checkComputed(_ item: [Contract.SQLTokens.Token], column: String) throws(CleanRoomError) {
            var index = 0
            while index < item.count {
                let token = item[index]
                defer { index += 1 }
                guard tokens.identifier(token) != nil else { continue }
                let next = index + 1 < item.count ? item[index + 1] : nil
                if let next, tokens.isPunctuation(next, ".") {
                    guard index + 2 < item.count, tokens.identifier(item[index + 2]) != nil,
                        index + 3 >= item.count || !tokens.isPunctuation(item[index + 3], ".")
                    else { throw refuse("the computed column \(column) names a column with a schema") }
                    try check((token, item[index + 2]), origin: nil, what: "the computed column \(column)")
                    index += 2
                    continue
                }
                if let next, tokens.isPunctuation(next, "(") { continue }
                // Force-unwrap is safe: shape found a count for every read, and there is at least one read.
                let counted = counts[query.reads[0]]!
                let sql =
                    Array(tokens.bytes[..<counted.count.aggregate.lowerBound]) + Array(tokens.bytes[token.range])
                    + Array(tokens.bytes[counted.count.aggregate.upperBound...])
                guard let described = try? probe(String(decoding: sql, as: UTF8.self), nil),
                    described.origins.indices.contains(counted.index), described.origins[counted.index] != nil
                else { continue }
                throw refuse(
                    "the computed column \(column) names \(tokens.text(token)) unqualified, and FROM has more than one "
                        + "table"
                )
            }
        }
        for (index, item) in top.results.enumerated() {
            guard let origin = origins[index], !counts.values.contains(where: { $0.index == index }) else { continue }
            guard let reference = Self.reference(item, tokens, alias: true) else {
                throw refuse("the raw column \(columns[index]) is not a plain column reference")
            }
            try check(reference, origin: origin, what: "the raw column \(columns[index])")
        }
        if !single {
            for (index, item) in top.results.enumerated()
            where origins[index] == nil && !counts.values.contains(where: { $0.index == index }) {
                try checkComputed(Self.withoutAlias(item, tokens), column: columns[index])
            }
        }
        for term in top.groupTerms {
            if term.count == 1, term[0].kind == .number {
                if single { continue }
                guard let ordinal = Int(tokens.text(term[0])), top.results.indices.contains(ordinal - 1),
                    origins[ordinal - 1] != nil, Self.reference(top.results[ordinal - 1], tokens, alias: true) != nil
                else {
                    throw refuse("GROUP BY \(text(term)) names a computed column, and FROM has more than one table")
                }
                // The raw column it names was checked above.
                continue
            }
            if let reference = Self.reference(term, tokens, alias: false) {
                try check(reference, origin: nil, what: "GROUP BY \(text(term))")
            } else if !single {
                throw refuse("GROUP BY \(text(term)) is an expression, and FROM has more than one table")
            }
        }
    }

    /// One `COUNT(DISTINCT <q>.<column>) [AS] <name>` of the query's own result columns, by byte ranges of the SQL.
    struct IdentityCount {
        /// The whole aggregate, `COUNT` to its `)`.
        var aggregate: Range<Int>
        /// The whole result column, `COUNT` to the end of its alias.
        var whole: Range<Int>
        /// The qualifier `<q>` as written, if any.
        var qualifier: Range<Int>?
        /// The qualifier as SQLite compares it (unquoted, lower case), if any.
        var qualifierName: String?
        /// The argument as written.
        var argument: Range<Int>
        /// The counted column's name (lower case, unquoted).
        var column: String
    }

    /// Every `COUNT(DISTINCT <q>.<column>) [AS] <name>` at depth 0 (the query's own result columns).
    static func identityCounts(_ sql: Contract.SQLTokens, name: String) -> [IdentityCount] {
        let tokens = sql.tokens
        let wanted = name.lowercased()
        var found: [IdentityCount] = []
        for start in tokens.indices where tokens[start].depth == 0 && sql.word(tokens[start]) == "COUNT" {
            var index = start + 1
            func next() -> Contract.SQLTokens.Token? { index < tokens.count ? tokens[index] : nil }
            guard let open = next(), sql.isPunctuation(open, "(") else { continue }
            index += 1
            guard let distinct = next(), sql.word(distinct) == "DISTINCT" else { continue }
            index += 1
            guard let first = next(), var column = sql.identifier(first) else { continue }
            var qualifier: Range<Int>?
            var qualifierName: String?
            var argument = first.range
            index += 1
            if let dot = next(), sql.isPunctuation(dot, "."), index + 1 < tokens.count,
                let second = sql.identifier(tokens[index + 1])
            {
                qualifier = first.range
                qualifierName = column
                column = second
                argument = first.range.lowerBound..<tokens[index + 1].range.upperBound
                index += 2
            }
            guard let close = next(), sql.isPunctuation(close, ")") else { continue }
            index += 1
            if let alias = next(), sql.word(alias) == "AS" { index += 1 }
            guard let alias = next(), sql.identifier(alias) == wanted else { continue }
            found.append(
                IdentityCount(
                    aggregate: tokens[start].range.lowerBound..<close.range.upperBound,
                    whole: tokens[start].range.lowerBound..<alias.range.upperBound,
                    qualifier: qualifier,
                    qualifierName: qualifierName,
                    argument: argument,
                    column: column
                )
            )
        }
        return found
    }

    /// Check that `name` counts the distinct identities of `read` on `read`'s own table in the query's own FROM (see
    /// the type's discussion): the aggregate is found in the tokens, then SQLite resolves its argument in two probes.
    private func checkIdentityCount(
        _ query: Contract.Query,
        read: String,
        name: String,
        tokens: Contract.SQLTokens,
        probe: CleanRoomDatabase.Probe
    ) throws(CleanRoomError) -> IdentityCount {
        // Force-unwrap is safe: reads were validated against the data sets.
        let identity = contract.dataSet(read)!.identity
        func refuse(_ why: String) -> CleanRoomError {
            CleanRoomError(
                .outputRule,
                "minIdentities: query \(query.id): \(name) must be COUNT(DISTINCT \(read).\(identity)) (or over an "
                    + "alias of \(read) in the query's own FROM) among the query's own result columns: \(why)"
            )
        }
        let counts = Self.identityCounts(tokens, name: name)
        guard counts.count == 1 else {
            throw refuse(counts.isEmpty ? "there is no such aggregate" : "there are \(counts.count)")
        }
        let count = counts[0]
        guard count.column == identity.lowercased() else { throw refuse("it counts \(count.column)") }
        guard count.qualifier != nil || query.reads.count == 1 else {
            throw refuse("the identity column must be qualified when the query reads more than one data set")
        }
        let before = tokens.bytes[..<count.aggregate.lowerBound]
        let after = tokens.bytes[count.aggregate.upperBound...]
        let rowid = (count.qualifier.map { Array(tokens.bytes[$0]) + Array(".".utf8) } ?? []) + Array("rowid".utf8)
        let probes: [(sql: [UInt8], origin: String, rowidOf: String?)] = [
            (Array(before) + tokens.bytes[count.argument] + Array(after), "\(read).\(identity)", nil),
            (Array(before) + rowid + Array(after), "\(read).rowid", read),
        ]
        for (sql, expected, rowidOf) in probes {
            let described: (columns: [String], origins: [String?])
            do {
                described = try probe(String(decoding: sql, as: UTF8.self), rowidOf)
            } catch {
                throw refuse("SQLite does not resolve it to a table of the query's own FROM (\(error.reason))")
            }
            let indexes = described.columns.indices.filter { described.columns[$0].lowercased() == name.lowercased() }
            guard indexes.count == 1, let origin = described.origins[indexes[0]],
                origin.lowercased() == expected.lowercased()
            else {
                let origin = indexes.count == 1 ? described.origins[indexes[0]] : nil
                throw refuse("SQLite resolves it to \(origin ?? "an expression"), not \(expected)")
            }
        }
        return count
    }

    /// The released rows in the engine's canonical order, so that the order SQLite produced (which an `ORDER BY`
    /// over anything, a bare column or an exact aggregate included, could steer) never leaves the enclave: rows
    /// compare column by column, first to last; within a column `NULL` sorts first, then integers (by value), then
    /// reals (by value), then texts (by their UTF-8 bytes). The order is a function of the released values alone.
    public static func canonicalOrder(_ rows: [[SQLValue]]) -> [[SQLValue]] {
        func rank(_ value: SQLValue) -> Int {
            switch value {
            case .null: return 0
            case .integer: return 1
            case .real: return 2
            case .text: return 3
            }
        }
        func less(_ left: SQLValue, _ right: SQLValue) -> Bool? {
            switch (left, right) {
            case (.integer(let a), .integer(let b)): return a == b ? nil : a < b
            case (.real(let a), .real(let b)):
                // By bit pattern: -0.0 == 0.0, and a tie would leave SQLite's order (which ORDER BY steers) to decide.
                return a.bitPattern == b.bitPattern ? nil : a.isTotallyOrdered(belowOrEqualTo: b)
            case (.text(let a), .text(let b)):
                return a.utf8.elementsEqual(b.utf8) ? nil : a.utf8.lexicographicallyPrecedes(b.utf8)
            default:
                return rank(left) == rank(right) ? nil : rank(left) < rank(right)
            }
        }
        return rows.sorted { left, right in
            for (a, b) in zip(left, right) {
                if let less = less(a, b) { return less }
            }
            return left.count < right.count
        }
    }

    func dpOwners(_ query: Contract.Query) -> [(owner: String, privacy: Contract.Privacy)] {
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
    ///   then. With differential privacy the budget is spent once the query passed the output rules, before it runs:
    ///   a run that fails after that (an SQL error, the time or memory limit) keeps it spent.
    public func run(_ request: Request) throws(CleanRoomError) -> Outcome {
        try state.requireActive()
        let query = try authorize(request)
        // One prepare: the output rules are checked on the prepared statement's columns before it runs.
        var columns: [String] = []
        var countColumns: [Int] = []
        let tokens = try Self.tokens(query)
        var epsilon: Int64 = 0
        let owners = dpOwners(query)
        let raw = try database.run(query, parameters: request.parameters) {
            names,
            origins,
            probe throws(CleanRoomError) in
            columns = names
            countColumns = try shape(query, tokens: tokens, columns: names, origins: origins, probe: probe)
            if !owners.isEmpty {
                // Spent once the query passed the rules, before a row is computed: a run that then fails (an SQL
                // error such as an integer overflow, a limit) costs ε too, so a condition on one record that makes
                // the query fail is no free oracle.
                // Force-unwrap is safe: init requires a budget when any rule configures privacy.
                epsilon = owners.map(\.privacy.epsilonMilli).min() ?? 0
                try budget!.spend(epsilonMilli: epsilon, owners: owners.map { ($0.owner, $0.privacy.budgetMilli) })
            }
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

        if !owners.isEmpty {
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
            rows: Self.canonicalOrder(rows),
            suppressedGroups: suppressed,
            minIdentities: minimum,
            epsilonSpentMilli: epsilon
        )
    }
}
