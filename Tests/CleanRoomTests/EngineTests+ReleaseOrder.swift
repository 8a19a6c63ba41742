import CleanRoom
import CleanRoomEngine
import Testing

/// What the engine releases must not be steered by one record (attack review F2): LIMIT and OFFSET cut the groups
/// before the threshold and the noise, ORDER BY chose the release order, HAVING could test a bare column, and a
/// subquery in WHERE, ON, HAVING, ORDER BY or LIMIT could read any record. Fixture data: m1 has c1-c5 and c11 (c11
/// alone has amount 5), m2 has c6-c7 (below the minimum of 3), m3 has c8-c10.
extension EngineTests {
    /// One attack: the query, the two values of `:c` (or `:x`) whose releases must not differ, and the rule that
    /// refuses it (nil: it runs, and both runs release `expected`, in the engine's canonical order).
    struct SteeringCase {
        var id: String
        var sql: String
        var computed: [String] = []
        var values: (SQLValue, SQLValue) = (.text("c11"), .text("c1"))
        var rule: String?
        var expected: [[SQLValue]] = []
    }

    static let ids = "COUNT(DISTINCT card) AS _ids_a_tx"
    static let m1m3: [[SQLValue]] = [[.text("m1")], [.text("m3")]]

    static let steeringCases: [SteeringCase] = [
        // LIMIT / OFFSET: refused whatever their form (they cut before the threshold and the noise).
        SteeringCase(
            id: "limit-subquery",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant LIMIT (SELECT c.amount < 50 FROM a_tx c "
                + "WHERE c.card = :c)",
            rule: "limitOffset"
        ),
        SteeringCase(
            // A digit of a neverOutput column as the number of rows released.
            id: "limit-forbidden-digit",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant LIMIT (SELECT CAST(substr(c.card, 3, 1) AS "
                + "INTEGER) FROM a_tx c WHERE c.amount = 5 OR c.card = :c)",
            rule: "limitOffset"
        ),
        SteeringCase(
            id: "offset-subquery",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant LIMIT -1 OFFSET (SELECT c.amount < 50 "
                + "FROM a_tx c WHERE c.card = :c)",
            rule: "limitOffset"
        ),
        SteeringCase(
            id: "limit-comma-subquery",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant LIMIT (SELECT c.amount < 50 FROM a_tx c "
                + "WHERE c.card = :c), 5",
            rule: "limitOffset"
        ),
        SteeringCase(
            // No subquery: top-1 by an aggregate of a forbidden column picks the group holding card :c.
            id: "limit-top-by-forbidden-aggregate",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant ORDER BY MAX(card = :c) DESC, merchant "
                + "LIMIT 1",
            values: (.text("c11"), .text("c8")),
            rule: "limitOffset"
        ),
        SteeringCase(
            // A literal LIMIT: a group below the minimum takes a slot, then is suppressed (m2 exists only for c6).
            id: "limit-literal-suppressed-slot",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE merchant <> 'm2' OR card = :c GROUP BY merchant "
                + "ORDER BY merchant DESC LIMIT 2",
            values: (.text("c11"), .text("c6")),
            rule: "limitOffset"
        ),
        SteeringCase(
            id: "limit-expression",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE card <> :c GROUP BY merchant LIMIT max(1, 2)",
            rule: "limitOffset"
        ),
        // Subqueries outside FROM items: refused wherever they are.
        SteeringCase(
            id: "order-subquery",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant ORDER BY CASE WHEN (SELECT c.amount FROM a_tx "
                + "c WHERE c.card = :c) < 50 THEN merchant END DESC",
            rule: "subqueries"
        ),
        SteeringCase(
            id: "where-exists",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE EXISTS (SELECT 1 FROM a_tx c WHERE c.card = :c AND "
                + "c.amount < 50) GROUP BY merchant",
            rule: "subqueries"
        ),
        SteeringCase(
            id: "where-in-select",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE merchant IN (SELECT c.merchant FROM a_tx c WHERE "
                + "c.card = :c) GROUP BY merchant",
            values: (.text("c11"), .text("c8")),
            rule: "subqueries"
        ),
        SteeringCase(
            id: "where-scalar",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE (SELECT c.amount FROM a_tx c WHERE c.card = :c) < 50 "
                + "GROUP BY merchant",
            rule: "subqueries"
        ),
        SteeringCase(
            id: "where-cte",
            sql: "WITH t AS (SELECT card FROM a_tx WHERE card = :c AND amount < 50) SELECT merchant, \(ids) "
                + "FROM a_tx WHERE EXISTS (SELECT 1 FROM t) GROUP BY merchant",
            rule: "subqueries"
        ),
        SteeringCase(
            // A CTE as an IN list: a subquery without the word SELECT after the query's own.
            id: "where-in-cte-table",
            sql: "WITH t AS (SELECT merchant FROM a_tx WHERE card = :c) SELECT merchant, \(ids) FROM a_tx "
                + "WHERE merchant IN t GROUP BY merchant",
            values: (.text("c11"), .text("c8")),
            rule: "subqueries"
        ),
        SteeringCase(
            id: "on-subquery",
            sql: "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 JOIN a_tx a2 ON "
                + "a2.card = a1.card AND (SELECT c.amount FROM a_tx c WHERE c.card = :c) < 50 GROUP BY a1.merchant",
            rule: "subqueries"
        ),
        SteeringCase(
            id: "on-subquery-in-parenthesized-join",
            sql: "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM (a_tx a1 JOIN a_tx a2 ON "
                + "a2.card = a1.card AND (SELECT c.amount FROM a_tx c WHERE c.card = :c) < 50) GROUP BY a1.merchant",
            rule: "subqueries"
        ),
        SteeringCase(
            id: "having-in-select",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant HAVING merchant IN (SELECT c.merchant "
                + "FROM a_tx c WHERE c.card = :c)",
            values: (.text("c11"), .text("c8")),
            rule: "subqueries"
        ),
        // HAVING: a name outside an aggregate must be a GROUP BY term.
        SteeringCase(
            id: "having-bare-forbidden",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant HAVING card = :c",
            rule: "groupedColumns"
        ),
        SteeringCase(
            // The bare column is the record of the group's minimum amount (c11 in m1).
            id: "having-bare-next-to-min",
            sql: "SELECT merchant, MIN(amount) AS lo, \(ids) FROM a_tx GROUP BY merchant HAVING "
                + "substr(card, 1, 3) = :c",
            computed: ["lo"],
            rule: "groupedColumns"
        ),
        SteeringCase(
            id: "having-bare-in-scalar-max",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant HAVING max(card, '') = :c",
            rule: "groupedColumns"
        ),
        SteeringCase(
            id: "having-qualified-other-instance",
            sql: "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 JOIN a_tx a2 ON "
                + "a2.merchant = a1.merchant GROUP BY a1.merchant HAVING a2.card = :c",
            rule: "groupedColumns"
        ),
        // ORDER BY: whatever it sorts by, the engine releases the rows in its own order.
        SteeringCase(
            // SQLite's bare-column rule: each group sorted by the card of its minimum-amount record.
            id: "order-bare-forbidden",
            sql: "SELECT merchant, MIN(amount) AS lo, \(ids) FROM a_tx WHERE card <> :c GROUP BY merchant "
                + "ORDER BY card DESC",
            computed: ["lo"],
            values: (.text("c2"), .text("c3")),
            expected: [[.text("m1"), .integer(5)], [.text("m3"), .integer(100)]]
        ),
        SteeringCase(
            id: "order-by-aggregate-of-forbidden",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant ORDER BY MAX(card = :c) DESC",
            values: (.text("c11"), .text("c8")),
            expected: m1m3
        ),
        SteeringCase(
            id: "order-other-instance",
            sql: "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 JOIN a_tx a2 ON "
                + "a2.merchant = a1.merchant GROUP BY a1.merchant ORDER BY MAX(a2.card = :c) DESC",
            values: (.text("c11"), .text("c8")),
            expected: m1m3
        ),
        SteeringCase(
            id: "order-bare-other-instance",
            sql: "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 JOIN a_tx a2 ON "
                + "a2.merchant = a1.merchant AND a2.card <> :c GROUP BY a1.merchant ORDER BY a2.card DESC",
            values: (.text("c2"), .text("c9")),
            expected: m1m3
        ),
        SteeringCase(
            id: "order-window",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE card <> :c GROUP BY merchant ORDER BY "
                + "SUM(COUNT(*)) OVER (ORDER BY merchant DESC)",
            expected: m1m3
        ),
        SteeringCase(
            id: "order-positional",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE card <> :c GROUP BY merchant ORDER BY 1 DESC",
            expected: m1m3
        ),
        // IS [NOT] DISTINCT FROM put a FROM inside an expression, and the clauses were cut at it (review 5).
        SteeringCase(
            id: "having-bare-behind-distinct-from",
            sql: "SELECT merchant, \(ids) FROM a_tx GROUP BY merchant HAVING :c IS NOT DISTINCT FROM card",
            rule: "clauses"
        ),
        SteeringCase(
            // The self-join of review 3 again: the FROM clause was read as "NULL AS z", one table.
            id: "self-join-behind-distinct-from",
            sql: "SELECT a2.amount, COUNT(DISTINCT a1.card) AS _ids_a_tx, 1 IS NOT DISTINCT FROM NULL AS z "
                + "FROM a_tx a1, a_tx a2 WHERE a1.card <> :c GROUP BY a2.amount",
            computed: ["z"],
            rule: "clauses"
        ),
        SteeringCase(
            id: "result-subquery-behind-distinct-from",
            sql: "SELECT COUNT(DISTINCT a.card) AS _ids_a_tx, a.merchant, a.merchant IS NOT DISTINCT FROM "
                + "(SELECT c.merchant FROM a_tx c WHERE c.card = :c) AS hit FROM a_tx a GROUP BY a.merchant",
            computed: ["hit"],
            values: (.text("c11"), .text("c8")),
            rule: "clauses"
        ),
        SteeringCase(
            id: "order-collate",
            sql: "SELECT merchant, \(ids) FROM a_tx WHERE card <> :c GROUP BY merchant ORDER BY merchant "
                + "COLLATE nocase DESC",
            expected: m1m3
        ),
    ]

    @Test("releaseSteeredByOneRecord: LIMIT/OFFSET, subqueries outside FROM, bare HAVING names are refused by name")
    func releaseSteeredByOneRecord() throws {
        for item in Self.steeringCases {
            let contract = contract(
                adding: query(
                    item.id,
                    item.sql,
                    computed: item.computed,
                    noise: [],
                    parameters: [.init(name: "c", type: .text)]
                )
            )
            let engine = try engine(contract)
            var outcomes: [QueryEngine.Outcome] = []
            for value in [item.values.0, item.values.1] {
                do {
                    outcomes.append(try engine.run(request(item.id, parameters: ["c": value])))
                } catch {
                    let rule = item.rule ?? "(none)"
                    #expect(
                        error.code == .outputRule && error.reason.hasPrefix(rule + ":"),
                        "\(item.id): \(error)"
                    )
                }
            }
            if let rule = item.rule {
                #expect(outcomes.isEmpty, "\(item.id) ran: \(outcomes.map(\.rows))")
                expectError(.outputRule, rule) { try engine.validate(try #require(contract.query(item.id))) }
            } else {
                try engine.validate(try #require(contract.query(item.id)))
                #expect(outcomes.map(\.rows) == [item.expected, item.expected], "\(item.id)")
            }
        }
    }

    @Test("releaseSteeredByOneRecord: under DP, neither ORDER BY nor HAVING compares a noised sum exactly")
    func releaseSteeredUnderPrivacy() throws {
        let parameters: [Contract.Parameter] = [.init(name: "x", type: .integer)]
        let noise: [Contract.Noise] = [.init(column: "s", sensitivity: 100)]
        let select = "SELECT merchant, SUM(amount) AS s, \(Self.ids) FROM a_tx GROUP BY merchant "
        // m1's exact sum is 505: x = 500 and x = 510 must release the same groups in the same order.
        let ordered = "dp-order"
        let ordering = contract(
            adding: query(
                ordered,
                select + "ORDER BY (SUM(amount) > :x) DESC, merchant DESC",
                computed: ["s"],
                noise: noise,
                parameters: parameters
            ),
            privacy: .init(epsilonMilli: 100, budgetMilli: 100_000)
        )
        let engine = try dpEngine(ordering)
        for x: Int64 in [500, 510] {
            let outcome = try engine.run(request(ordered, parameters: ["x": .integer(x)]))
            #expect(outcome.rows.map { $0[0] } == [.text("m1"), .text("m3")], "x = \(x)")
        }
        for (id, having, rule) in [
            ("dp-having-sum", "HAVING SUM(amount) > :x", "differentialPrivacy"),
            ("dp-having-count", "HAVING COUNT(*) > :x", "differentialPrivacy"),
            ("dp-having-max", "HAVING MAX(amount) + 0 * :x > 50", "differentialPrivacy"),
            // The alias of a noised column names the exact aggregate.
            ("dp-having-alias", "HAVING s > :x", "groupedColumns"),
        ] {
            let having = self.contract(
                adding: query(id, select + having, computed: ["s"], noise: noise, parameters: parameters),
                privacy: .init(epsilonMilli: 100, budgetMilli: 100_000)
            )
            let engine = try dpEngine(having)
            expectError(.outputRule, rule) { _ = try engine.run(request(id, parameters: ["x": .integer(500)])) }
            expectError(.outputRule, rule) { try engine.validate(try #require(having.query(id))) }
        }
    }

    @Test("releaseSteeredByOneRecord: under DP, a run that fails on one record's value still spends ε")
    func errorOracleSpendsBudget() throws {
        // abs() of the smallest integer overflows: the run fails exactly when card :c has an amount below 50.
        let sql =
            "SELECT merchant, SUM(amount) AS s, \(Self.ids) FROM a_tx WHERE abs(CASE WHEN card = :c AND amount < 50 "
            + "THEN -9223372036854775807 - 1 ELSE 0 END) >= 0 GROUP BY merchant"
        let contract = contract(
            adding: query(
                "oracle",
                sql,
                computed: ["s"],
                noise: [.init(column: "s", sensitivity: 100)],
                parameters: [.init(name: "c", type: .text)]
            ),
            privacy: .init(epsilonMilli: 100, budgetMilli: 1000)
        )
        let budget = budget(contract, counter: InMemoryCounter(), store: InMemoryLedgerStore())
        let engine = try engine(contract, budget: budget)
        _ = try engine.run(request("oracle", parameters: ["c": .text("c1")]))
        #expect(try budget.remainingMilli(owner: "bank-a", budgetMilli: 1000) == 900)
        expectError(.engine) { _ = try engine.run(request("oracle", parameters: ["c": .text("c11")])) }
        #expect(try budget.remainingMilli(owner: "bank-a", budgetMilli: 1000) == 800, "the failed run spent nothing")
    }

    @Test("releaseSteeredByOneRecord: honest ORDER BY, HAVING and FROM subqueries still run, rows in canonical order")
    func releaseHonestForms() throws {
        for (id, sql, computed, expected) in [
            (
                "order-desc", "SELECT merchant, \(Self.ids) FROM a_tx GROUP BY merchant ORDER BY merchant DESC", [],
                Self.m1m3
            ),
            (
                "having-aggregate",
                "SELECT merchant, COUNT(*) AS n, \(Self.ids) FROM a_tx GROUP BY merchant HAVING COUNT(*) > 3 "
                    + "AND MAX(amount) >= 100 ORDER BY n",
                ["n"],
                [[.text("m1"), .integer(6)]]
            ),
            (
                "having-group-term",
                "SELECT merchant, \(Self.ids) FROM a_tx GROUP BY merchant HAVING merchant <> 'm3' AND "
                    + "merchant IS NOT NULL",
                [],
                [[.text("m1")]]
            ),
            (
                "having-expression-term",
                "SELECT lower(merchant) AS m, \(Self.ids) FROM a_tx GROUP BY lower(merchant) HAVING "
                    + "lower(merchant) LIKE 'm%' AND CAST(SUM(amount) AS INTEGER) > 0",
                ["m"],
                Self.m1m3
            ),
            (
                "from-subquery-filter",
                "SELECT a.merchant, COUNT(DISTINCT a.card) AS _ids_a_tx FROM a_tx a JOIN (SELECT card FROM a_tx "
                    + "WHERE amount > (SELECT 50)) big ON big.card = a.card GROUP BY a.merchant ORDER BY 1 DESC",
                [],
                Self.m1m3
            ),
            (
                "comma-from-subquery",
                "SELECT a.merchant, COUNT(DISTINCT a.card) AS _ids_a_tx FROM a_tx a, (SELECT card FROM a_tx WHERE "
                    + "amount IN (SELECT 100)) big WHERE big.card = a.card GROUP BY a.merchant",
                [],
                Self.m1m3
            ),
            (
                "subquery-item-in-parenthesized-join",
                "SELECT a.merchant, COUNT(DISTINCT a.card) AS _ids_a_tx FROM (a_tx a JOIN (SELECT card FROM a_tx "
                    + "WHERE EXISTS (SELECT 1)) big ON big.card = a.card) GROUP BY a.merchant",
                [],
                Self.m1m3
            ),
            (
                "cte-filter",
                "WITH big AS (SELECT card FROM a_tx WHERE amount > 50 LIMIT 100) SELECT a.merchant, "
                    + "COUNT(DISTINCT a.card) AS _ids_a_tx FROM a_tx a JOIN big ON big.card = a.card GROUP BY a.merchant",
                [],
                Self.m1m3
            ),
            (
                // Words that are not names: LIMIT in a string, a column alias "limit", SELECT in a comment.
                "words",
                "SELECT merchant AS \"limit\", \(Self.ids) FROM a_tx WHERE merchant <> 'LIMIT (SELECT 1)' "
                    + "/* SELECT */ GROUP BY merchant;",
                [],
                Self.m1m3
            ),
        ] as [(String, String, [String], [[SQLValue]])] {
            let contract = contract(adding: query(id, sql, computed: computed, noise: []))
            let engine = try engine(contract)
            try engine.validate(try #require(contract.query(id)))
            let outcome = try engine.run(request(id, parameters: [:]))
            #expect(outcome.rows == expected, "\(id)")
        }
        // The fixture's query (a join, ORDER BY) and the canonical order of mixed values.
        #expect(try engine().run(request()).rows == [[.text("m1"), .integer(5)], [.text("m3"), .integer(3)]])
        let rows: [[SQLValue]] = [
            [.text("b"), .integer(1)], [.integer(2), .null], [.null, .real(1)], [.text("a"), .integer(3)],
            [.real(-1), .null], [.integer(2), .integer(-5)], [.text("a"), .integer(2)], [.text("B"), .null],
        ]
        #expect(
            QueryEngine.canonicalOrder(rows) == [
                [.null, .real(1)], [.integer(2), .null], [.integer(2), .integer(-5)], [.real(-1), .null],
                [.text("B"), .null], [.text("a"), .integer(2)], [.text("a"), .integer(3)], [.text("b"), .integer(1)],
            ]
        )
    }

    @Test("canonicalOrder: -0.0 and 0.0 are told apart, so the input order never decides")
    func canonicalOrderTellsSignedZerosApart() {
        let rows: [[SQLValue]] = [[.real(0.0)], [.real(-0.0)]]
        for input in [rows, Array(rows.reversed())] {
            let negative = QueryEngine.canonicalOrder(input).map { row -> Bool in
                if case .real(let value) = row[0] { return value.sign == .minus }
                return false
            }
            #expect(negative == [true, false])
        }
    }
}
