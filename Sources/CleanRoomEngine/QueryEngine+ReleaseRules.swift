internal import CleanRoom

/// The rules that keep what a run releases from being steered by one record (`limitOffset`, `subqueries`, and
/// `groupedColumns` and `differentialPrivacy` applied to `HAVING`); the order of the released rows is the engine's
/// own (`QueryEngine/canonicalOrder(_:)`), so `ORDER BY` decides nothing that leaves the enclave.
extension QueryEngine {
    /// The aggregate functions of the authorizer's allow-list (`min` and `max` only with one argument).
    static let aggregateFunctions: Set<String> = ["COUNT", "SUM", "TOTAL", "AVG", "MIN", "MAX"]

    /// `clauses`: the query's own `SELECT` must cut into its clauses one way only, since every rule that reads its
    /// result columns, `FROM` items, `GROUP BY` terms or `HAVING` works on that cut. Refused: SQLite's
    /// `IS [NOT] DISTINCT FROM` operator anywhere (it puts a `FROM` word inside an expression, so the result columns
    /// and the `FROM` clause were cut at the operator: a self-join's raw column, a bare column in `HAVING` and a
    /// subquery in a result column all passed as a third review showed; write `IS` / `IS NOT`, which mean the same),
    /// a clause word (`FROM`, `WHERE`, `GROUP`, `HAVING`, `WINDOW`, `ORDER`, `LIMIT`) twice at the top level, and
    /// `GROUP` or `ORDER` at the top level not followed by `BY` (`WITHIN GROUP`).
    func checkClauses(_ query: Contract.Query, tokens: Contract.SQLTokens) throws(CleanRoomError) {
        let list = tokens.tokens
        func refuse(_ why: String, at index: Int) -> CleanRoomError {
            CleanRoomError(
                .outputRule,
                "clauses: query \(query.id): \(why) (at byte \(list[index].range.lowerBound)), so its clauses cannot be "
                    + "told apart"
            )
        }
        for index in list.indices.dropLast()
        where tokens.word(list[index]) == "DISTINCT" && tokens.word(list[index + 1]) == "FROM" {
            throw refuse("IS [NOT] DISTINCT FROM puts a FROM inside an expression (write IS or IS NOT)", at: index)
        }
        guard let select = list.firstIndex(where: { $0.depth == 0 && tokens.word($0) == "SELECT" }) else { return }
        let clauseWords: Set<String> = ["FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT"]
        var seen: Set<String> = []
        for index in list.indices where index > select && list[index].depth == 0 {
            if tokens.isPunctuation(list[index], ";") { break }
            guard let word = tokens.word(list[index]), clauseWords.contains(word) else { continue }
            guard seen.insert(word).inserted else { throw refuse("\(word) twice at the top level", at: index) }
            if word == "GROUP" || word == "ORDER", index + 1 >= list.count || tokens.word(list[index + 1]) != "BY" {
                throw refuse("\(word) without BY at the top level", at: index)
            }
        }
    }

    /// Check the clauses that choose which groups are released and in which order.
    ///
    /// - `limitOffset`: no `LIMIT` (nor `OFFSET`) on the query's own `SELECT`, whatever its form. SQLite applies it
    ///   before the engine's threshold and noise, so the rows it keeps depend on groups that are then suppressed
    ///   (a group below the minimum takes a slot) and on the exact, unnoised values `ORDER BY` sorts by (top-k over
    ///   exact sums, or over `MAX(card = :c)`, the group holding one card); its expression may be a subquery over any
    ///   record. The analyst sorts and cuts the released rows. Found in SQLite's tokens, and proven absent by SQLite:
    ///   the SQL with ` LIMIT 0` appended must prepare (never run), which it does not when the query has its own.
    /// - `subqueries`: a subquery only as a `FROM` item (or in a `WITH` clause before the query's own `SELECT`), never
    ///   in a result column, `WHERE`, `ON`, `GROUP BY`, `HAVING`, `WINDOW`, `ORDER BY` or `LIMIT`: an `EXISTS`, `IN`
    ///   or scalar subquery reads any record of any instance, one bit per run or more.
    /// - `groupedColumns` in `HAVING`: a name outside an aggregate must be written exactly as a `GROUP BY` term (a
    ///   bare column is one arbitrary record's value: `HAVING card = :c`); the alias of a result column is refused
    ///   too (write the aggregate). SQLite tells which words are names: each word left is put alone as the `HAVING`
    ///   expression of a probe (prepared, never run); if it prepares, it resolved to a column or an alias.
    /// - `differentialPrivacy` in `HAVING`: with a DP owner read, no aggregate at all in `HAVING` (whether a group is
    ///   released is not noised, so `HAVING SUM(amount) > :x` or `HAVING COUNT(*) > :x` compares the exact value,
    ///   and a binary search on `:x` finds it; `ORDER BY` no longer matters, see `canonicalOrder(_:)`).
    func checkRelease(
        _ query: Contract.Query,
        tokens: Contract.SQLTokens,
        top: TopLevel,
        probe: CleanRoomDatabase.Probe
    ) throws(CleanRoomError) {
        let list = tokens.tokens
        // LIMIT: in the tokens, then by SQLite.
        if list[top.select...].contains(where: { $0.depth == 0 && tokens.word($0) == "LIMIT" }) {
            throw CleanRoomError(
                .outputRule,
                "limitOffset: query \(query.id) has LIMIT or OFFSET, which SQLite applies before the threshold and the "
                    + "noise (the rows kept would depend on suppressed groups and exact values); the engine releases "
                    + "every group that passes, in its own order"
            )
        }
        let last = list.lastIndex { !($0.depth == 0 && tokens.isPunctuation($0, ";")) }
        let body = last.map { Array(tokens.bytes[..<list[$0].range.upperBound]) } ?? []
        do {
            _ = try probe(String(decoding: body + Array(" LIMIT 0".utf8), as: UTF8.self), nil)
        } catch {
            throw CleanRoomError(
                .outputRule,
                "limitOffset: query \(query.id): SQLite does not take a LIMIT after it (\(error.reason)), so it has one"
            )
        }
        if let index = Self.subqueryOutsideFrom(tokens, top: top) {
            throw CleanRoomError(
                .outputRule,
                "subqueries: query \(query.id) has a subquery outside its FROM items (at byte \(list[index].range.lowerBound)"
                    + "): a subquery in WHERE, ON, HAVING, ORDER BY or a result column can read any record"
            )
        }
        if let having = top.havingIndexes {
            try checkHaving(query, tokens: tokens, top: top, having: having, probe: probe)
        }
    }

    /// The index of the first `SELECT`, or `IN` followed by a name (`x IN t`, a table or CTE as the list), after the
    /// query's own `SELECT` that is not inside a subquery `FROM` item (a `(` right after `FROM`, `,` or `JOIN`, or at
    /// the start of a parenthesized join, whose first word is `SELECT` or `WITH`); nil when there is none. `WITH`
    /// bodies come before the query's own `SELECT`.
    static func subqueryOutsideFrom(_ sql: Contract.SQLTokens, top: TopLevel) -> Int? {
        let tokens = sql.tokens
        var allowed: [ClosedRange<Int>] = []
        // The matching `)` of the `(` at `open`, or the end.
        func close(_ open: Int) -> Int {
            var index = open + 1
            while index < tokens.count {
                if tokens[index].depth == tokens[open].depth, sql.isPunctuation(tokens[index], ")") { return index }
                index += 1
            }
            return tokens.count - 1
        }
        func items(_ range: Range<Int>, depth: Int) {
            var itemNext = true
            var index = range.lowerBound
            while index < range.upperBound {
                let token = tokens[index]
                if token.depth == depth, sql.isPunctuation(token, "(") {
                    let end = close(index)
                    if itemNext {
                        if index + 1 < tokens.count, let word = sql.word(tokens[index + 1]),
                            word == "SELECT" || word == "WITH"
                        {
                            allowed.append(index...end)
                        } else {
                            items((index + 1)..<min(end, range.upperBound), depth: depth + 1)
                        }
                    }
                    itemNext = false
                    index = end + 1
                    continue
                }
                if token.depth == depth {
                    itemNext = sql.isPunctuation(token, ",") || sql.word(token) == "JOIN"
                }
                index += 1
            }
        }
        if let from = top.fromIndexes { items(from, depth: 0) }
        for index in tokens.indices where index > top.select && !allowed.contains(where: { $0.contains(index) }) {
            if sql.word(tokens[index]) == "SELECT" { return index }
            // `x IN t`: a table or CTE as the list, a subquery without the word.
            if sql.word(tokens[index]) == "IN", index + 1 < tokens.count, sql.identifier(tokens[index + 1]) != nil {
                return index
            }
        }
        return nil
    }

    /// `HAVING`: names only inside aggregates or as `GROUP BY` terms; no aggregate under differential privacy.
    private func checkHaving(
        _ query: Contract.Query,
        tokens: Contract.SQLTokens,
        top: TopLevel,
        having: Range<Int>,
        probe: CleanRoomDatabase.Probe
    ) throws(CleanRoomError) {
        let list = tokens.tokens
        guard !having.isEmpty else { return }
        let underPrivacy = !dpOwners(query).isEmpty
        func key(_ token: Contract.SQLTokens.Token) -> String {
            tokens.identifier(token).map { "id:" + $0 } ?? "tk:" + tokens.text(token)
        }
        let terms = top.groupTerms.filter { !$0.isEmpty }.map { $0.map(key) }.sorted { $0.count > $1.count }
        func close(_ open: Int) -> Int {
            var index = open + 1
            while index < having.upperBound {
                if list[index].depth == list[open].depth, tokens.isPunctuation(list[index], ")") { return index }
                index += 1
            }
            return having.upperBound - 1
        }
        func refuse(_ name: String) -> CleanRoomError {
            CleanRoomError(
                .outputRule,
                "groupedColumns: query \(query.id) names \(name) in HAVING outside an aggregate, and it is not written "
                    + "exactly as a GROUP BY term: SQLite would test the value of one arbitrary record of the group (or "
                    + "an alias: write the aggregate itself)"
            )
        }
        let expression = list[having.lowerBound].range.lowerBound..<list[having.upperBound - 1].range.upperBound
        var index = having.lowerBound
        while index < having.upperBound {
            if let term = terms.first(where: { term in
                index + term.count <= having.upperBound && list[index..<(index + term.count)].map(key) == term
            }) {
                index += term.count
                continue
            }
            let token = list[index]
            let next = index + 1 < having.upperBound ? list[index + 1] : nil
            let call = next.map { tokens.isPunctuation($0, "(") } ?? false
            if call, let word = tokens.word(token), Self.aggregateFunctions.contains(word) {
                if underPrivacy {
                    throw CleanRoomError(
                        .outputRule,
                        "differentialPrivacy: query \(query.id) reads data under differential privacy and has "
                            + "\(tokens.text(token))(…) in HAVING: whether a group is released is not noised, so HAVING "
                            + "would compare the exact aggregate"
                    )
                }
                let end = close(index + 1)
                let arguments = list[(index + 2)..<max(index + 2, end)]
                let scalar =
                    (word == "MIN" || word == "MAX")
                    && arguments.contains { $0.depth == token.depth + 1 && tokens.isPunctuation($0, ",") }
                if scalar {
                    // A scalar min/max: its arguments are checked like the rest.
                    index += 2
                    continue
                }
                index = end + 1
                // `FILTER (WHERE …)` belongs to the aggregate.
                if index + 1 < having.upperBound, tokens.word(list[index]) == "FILTER",
                    tokens.isPunctuation(list[index + 1], "(")
                {
                    index = close(index + 1) + 1
                }
                continue
            }
            defer { index += 1 }
            guard tokens.identifier(token) != nil, !call else { continue }
            if let next, tokens.isPunctuation(next, ".") { throw refuse(tokens.text(token) + ".…") }
            if tokens.word(token) == "NULL" { continue }
            let sql =
                Array(tokens.bytes[..<expression.lowerBound]) + Array(tokens.bytes[token.range])
                + Array(tokens.bytes[expression.upperBound...])
            if (try? probe(String(decoding: sql, as: UTF8.self), nil)) != nil { throw refuse(tokens.text(token)) }
        }
    }
}
