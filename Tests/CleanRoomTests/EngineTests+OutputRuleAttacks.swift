import CleanRoom
import CleanRoomEngine
import Testing

/// Holes an attack review found in the output rules: approved SQL that parties might sign without noticing that it
/// hides a forbidden column's origin, launders the identity count or escapes the noise. In the serialized engine
/// suite (an extension of it), because every test touches SQLite.
extension EngineTests {
    /// A query with a noise list (the fixture's `query` has none).
    func query(
        _ id: String,
        _ sql: String,
        reads: [String] = ["a_tx"],
        computed: [String],
        noise: [Contract.Noise],
        parameters: [Contract.Parameter] = []
    ) -> Contract.Query {
        Contract.Query(
            id: id,
            sql: sql,
            parameters: parameters,
            runners: ["analyst"],
            reads: reads,
            computed: computed,
            noise: noise
        )
    }

    /// A DP engine for `contract` with a fresh ledger.
    func dpEngine(_ contract: Contract) throws -> QueryEngine {
        try engine(contract, budget: budget(contract, counter: InMemoryCounter(), store: InMemoryLedgerStore()))
    }

    /// SQLite takes a compound SELECT's column names and origins from one arm only (the leftmost at the top, the
    /// rightmost in a FROM or scalar subquery), so every rule keyed on a column's origin could be steered by the
    /// arm the rules look at while another arm outputs card numbers or an unnoised sum.
    static let compoundCases: [(id: String, sql: String)] = [
        (
            "union-all-cards",
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant "
                + "UNION ALL SELECT card, 1000 FROM a_tx"
        ),
        (
            "union-in-from",
            "SELECT k, COUNT(DISTINCT k) AS _ids_a_tx FROM (SELECT card AS k FROM a_tx UNION SELECT merchant "
                + "FROM a_tx) GROUP BY k"
        ),
        (
            "lower-case-behind-comments",
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant /* ' */ union--'\n"
                + "all SELECT card, 1000 FROM a_tx"
        ),
        (
            "intersect",
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant "
                + "INTERSECT SELECT card, 1000 FROM a_tx"
        ),
        (
            "except",
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant "
                + "EXCEPT SELECT card, 1000 FROM a_tx"
        ),
        (
            "values-rows",
            "SELECT v.column1 AS k, COUNT(DISTINCT t.card) AS _ids_a_tx FROM a_tx t, "
                + "(VALUES ((SELECT card FROM a_tx LIMIT 1)), ((SELECT merchant FROM a_tx LIMIT 1))) v "
                + "GROUP BY v.column1"
        ),
        (
            "recursive-cte",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) "
                + "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx, c GROUP BY merchant"
        ),
        (
            // SQLite reads a byte-order mark that starts a token as a space: a scanner that took it for part of a
            // word would miss the UNION.
            "byte-order-mark-before-the-keyword",
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant \u{FEFF}UNION ALL "
                + "SELECT card, 1000 FROM a_tx"
        ),
    ]

    @Test("compoundSelect: UNION / INTERSECT / EXCEPT / VALUES lists / recursive CTEs are refused by name")
    func compoundSelect() throws {
        for (id, sql) in Self.compoundCases {
            let contract = contract(adding: query(id, sql))
            let engine = try engine(contract)
            expectError(.outputRule, "compoundSelect") { _ = try engine.run(request(id, parameters: [:])) }
            expectError(.outputRule, "compoundSelect") { try engine.validate(try #require(contract.query(id))) }
        }
    }

    @Test("compoundSelect: the second arm cannot carry an unnoised SUM past differential privacy")
    func compoundHidesUnnoisedSum() throws {
        let sql =
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant "
            + "UNION ALL SELECT merchant, SUM(amount) FROM a_tx GROUP BY merchant"
        let contract = contract(adding: query("dp-union", sql), privacy: .init(epsilonMilli: 100, budgetMilli: 1000))
        let engine = try dpEngine(contract)
        expectError(.outputRule, "compoundSelect") { _ = try engine.run(request("dp-union", parameters: [:])) }
    }

    @Test("compoundSelect: SQLite itself refuses compounds too (compound limit, query plan), without the text scan")
    func compoundRefusedBySQLite() throws {
        for (id, sql) in [
            ("union", "SELECT merchant FROM a_tx UNION ALL SELECT card FROM a_tx"),
            // A trailing VALUES arm is exempt from SQLITE_LIMIT_COMPOUND_SELECT: the query plan still shows it.
            ("values-arm", "SELECT merchant FROM a_tx UNION ALL SELECT card FROM a_tx UNION ALL VALUES ('x')"),
            (
                "values-rows",
                "SELECT column1 AS k FROM (VALUES ((SELECT card FROM a_tx)), ((SELECT merchant FROM a_tx)))"
            ),
        ] {
            let contract = contract(adding: query(id, sql))
            let engine = try engine(contract)
            // The database alone (no QueryEngine text scan in front of it).
            expectError(.outputRule, "compoundSelect") {
                _ = try engine.database.describe(try #require(contract.query(id)))
            }
        }
        let recursive = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c"
        let contract = contract(adding: query("recursive", recursive))
        let engine = try engine(contract)
        let query = try #require(contract.query("recursive"))
        do {
            _ = try engine.database.describe(query)
            Issue.record("a recursive CTE was prepared")
        } catch {
            #expect(error.code == .outputRule || error.code == .accessDenied, "\(error)")
        }
    }

    @Test("compoundSelect: the words in strings, quoted identifiers and comments are not compounds")
    func compoundWordsElsewhere() throws {
        let sql = """
            SELECT merchant AS "union", MAX(amount) AS [except], COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx \
            -- UNION ALL SELECT card\n WHERE merchant <> 'x UNION y' /* INTERSECT */ GROUP BY merchant ORDER BY merchant
            """
        let engine = try engine(contract(adding: query("words", sql, computed: ["except"])))
        let outcome = try engine.run(request("words", parameters: [:]))
        #expect(outcome.columns == ["union", "except"])
        #expect(outcome.rows == [[.text("m1"), .integer(100)], [.text("m3"), .integer(100)]])
    }

    /// Each of these makes `_ids_<set>` count something that is not the set's identity column, or counts it
    /// somewhere else than the top-level groups.
    static let identityLaunderingCases: [(id: String, sql: String, reads: [String])] = [
        (
            // b_tx reached only through a renaming subquery: the unqualified card is a_tx's.
            "unqualified-two-sets",
            "SELECT a.merchant AS merchant, COUNT(DISTINCT a.card) AS _ids_a_tx, COUNT(DISTINCT card) AS _ids_b_tx "
                + "FROM a_tx a JOIN (SELECT card AS k FROM b_tx) b ON a.card = b.k GROUP BY a.merchant",
            ["a_tx", "b_tx"]
        ),
        (
            "subquery-named-as-the-set",
            "SELECT merchant, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM (SELECT merchant, amount AS card FROM a_tx) "
                + "a_tx GROUP BY merchant",
            ["a_tx"]
        ),
        (
            "alias-without-as",
            "SELECT merchant, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM (SELECT merchant, day card FROM a_tx) "
                + "a_tx GROUP BY merchant",
            ["a_tx"]
        ),
        (
            "unaliased-renaming-subquery",
            "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM (SELECT merchant, day AS card FROM a_tx) "
                + "GROUP BY merchant",
            ["a_tx"]
        ),
        (
            "cte-column-list",
            "WITH t(merchant, card) AS (SELECT merchant, day FROM a_tx) "
                + "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM t GROUP BY merchant",
            ["a_tx"]
        ),
        (
            // The column's origin is a_tx.card, but its values are chosen by a correlated scalar subquery.
            "scalar-subquery-picks-cards",
            "SELECT merchant, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM (SELECT t.merchant AS merchant, "
                + "(SELECT c.card FROM a_tx c WHERE c.day >= t.day ORDER BY c.day LIMIT 1) AS card FROM a_tx t) a_tx "
                + "GROUP BY merchant",
            ["a_tx"]
        ),
        (
            // The count is over the whole set, attached to every single record.
            "count-in-a-subquery",
            "SELECT t.day, s._ids_a_tx FROM a_tx t, (SELECT COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx) s",
            ["a_tx"]
        ),
    ]

    @Test("minIdentities: the identity count must count the set's identity column on the set itself, at the top")
    func identityLaundering() throws {
        for (id, sql, reads) in Self.identityLaunderingCases {
            let contract = contract(adding: query(id, sql, reads: reads))
            let engine = try engine(contract)
            expectError(.outputRule, "minIdentities") { _ = try engine.run(request(id, parameters: [:])) }
        }
    }

    @Test("minIdentities: the honest forms still run (qualified by the set or an alias, quoted, unqualified alone)")
    func identityHonestForms() throws {
        for (id, sql, reads) in [
            ("plain", "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant", ["a_tx"]),
            (
                "qualified",
                "SELECT merchant, COUNT(DISTINCT a_tx.card) AS \"_ids_a_tx\" FROM a_tx WHERE amount > 50 "
                    + "GROUP BY merchant",
                ["a_tx"]
            ),
            (
                "join",
                "SELECT a.merchant AS merchant, count ( distinct a.\"card\" ) _ids_a_tx, COUNT(DISTINCT b.card) AS "
                    + "_ids_b_tx FROM a_tx AS a JOIN b_tx b ON a.card = b.card WHERE a.amount > 50 GROUP BY a.merchant",
                ["a_tx", "b_tx"]
            ),
        ] {
            let engine = try engine(contract(adding: query(id, sql, reads: reads)))
            let outcome = try engine.run(request(id, parameters: [:]))
            #expect(outcome.rows == [[.text("m1")], [.text("m3")]], "\(id)")
            #expect(outcome.suppressedGroups == 1, "\(id)")
        }
    }

    @Test("duplicateColumns: two output columns with one name are refused (the noise would cover only the first)")
    func duplicateColumns() throws {
        for (id, second) in [("same", "n"), ("case", "N")] {
            let sql =
                "SELECT merchant, COUNT(*) AS n, SUM(amount) AS \(second), COUNT(DISTINCT card) AS _ids_a_tx "
                + "FROM a_tx GROUP BY merchant"
            let contract = contract(
                adding: query(id, sql, computed: ["n", second], noise: [.init(column: "n", sensitivity: 1)]),
                privacy: .init(epsilonMilli: 100, budgetMilli: 1000)
            )
            let engine = try dpEngine(contract)
            expectError(.outputRule, "duplicateColumns") { _ = try engine.run(request(id, parameters: [:])) }
        }
    }

    @Test("a text parameter with a NUL is bound whole (what runs is what the receipt records)")
    func nulInTextParameter() throws {
        let sql =
            "SELECT merchant, COUNT(*) AS n, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx WHERE merchant = :m "
            + "GROUP BY merchant"
        let contract = contract(
            adding: query("by-merchant", sql, computed: ["n"], noise: [], parameters: [.init(name: "m", type: .text)])
        )
        let engine = try engine(contract)
        let plain = try engine.run(request("by-merchant", parameters: ["m": .text("m1")]))
        #expect(plain.rows == [[.text("m1"), .integer(6)]])
        let nul = try engine.run(request("by-merchant", parameters: ["m": .text("m1\u{0}zz")]))
        #expect(nul.rows.isEmpty, "ran as \"m1\": \(nul.rows)")
    }
}

extension EngineTests {
    @Test("groupedColumns: a raw column that is not grouped by (one arbitrary record's value) is refused")
    func bareColumns() throws {
        for (id, sql) in [
            // SQLite outputs the day of the record with the largest amount.
            (
                "bare-with-max",
                "SELECT merchant, day, MAX(amount) AS top, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx "
                    + "GROUP BY merchant"
            ),
            ("no-group-by", "SELECT t.amount, COUNT(DISTINCT t.card) AS _ids_a_tx FROM a_tx t"),
            (
                "other-alias-of-the-same-column",
                "SELECT a2.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 JOIN a_tx a2 "
                    + "ON a2.day = a1.day GROUP BY a1.merchant"
            ),
            (
                "scalar-subquery",
                "SELECT merchant, (SELECT c.day FROM a_tx c WHERE c.merchant = a_tx.merchant) AS d, "
                    + "COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY merchant"
            ),
        ] {
            let engine = try engine(contract(adding: query(id, sql, computed: ["top"])))
            expectError(.outputRule, "groupedColumns") { _ = try engine.run(request(id, parameters: [:])) }
        }
        for (id, sql) in [
            ("ordinal", "SELECT merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY 1"),
            (
                "expression-and-alias",
                "SELECT \"t\".merchant AS m, COUNT(DISTINCT t.card) AS _ids_a_tx FROM a_tx t "
                    + "GROUP BY T.\"MERCHANT\" HAVING COUNT(*) > 0 ORDER BY m"
            ),
        ] {
            let engine = try engine(contract(adding: query(id, sql)))
            let outcome = try engine.run(request(id, parameters: [:]))
            #expect(outcome.rows == [[.text("m1")], [.text("m3")]], "\(id)")
        }
    }
}

extension EngineTests {
    /// Each of these outputs (or groups by) a raw value of another table instance than the one whose identities
    /// `_ids_a_tx` counts: every group's count covers all identities of the counted instance, so it passes the
    /// threshold, while the released value comes from one record (c11 alone has amount 5; the minimum is 3).
    static let otherInstanceCases: [(id: String, sql: String, computed: [String])] = [
        (
            "self-join",
            "SELECT a2.amount, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 "
                + "WHERE :c = :c GROUP BY a2.amount", []
        ),
        (
            "self-join-targeted",
            "SELECT a2.amount, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 WHERE a2.card = :c "
                + "GROUP BY a2.amount", []
        ),
        (
            "from-subquery",
            "SELECT t.amount, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx, "
                + "(SELECT amount FROM a_tx WHERE card = :c) t GROUP BY t.amount", []
        ),
        (
            "cte",
            "WITH t AS (SELECT amount FROM a_tx WHERE card = :c) SELECT t.amount, COUNT(DISTINCT a_tx.card) AS "
                + "_ids_a_tx FROM a_tx, t GROUP BY t.amount", []
        ),
        (
            // Unqualified: the name resolves to the only FROM item that has it, the subquery.
            "unqualified-from-subquery",
            "SELECT amt, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx, "
                + "(SELECT amount AS amt FROM a_tx WHERE card = :c) GROUP BY amt", []
        ),
        (
            // Two FROM items named q: q.card and q.rowid resolve to the table, q.amt to the subquery.
            "duplicate-alias",
            "SELECT q.amt, COUNT(DISTINCT q.card) AS _ids_a_tx FROM a_tx q, "
                + "(SELECT amount AS amt FROM a_tx WHERE card = :c) q GROUP BY q.amt", []
        ),
        (
            "natural-join",
            "SELECT amt, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx NATURAL JOIN "
                + "(SELECT amount AS amt, merchant FROM a_tx WHERE card = :c) GROUP BY amt", []
        ),
        (
            "using-join",
            "SELECT amt, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx JOIN "
                + "(SELECT amount AS amt, merchant FROM a_tx WHERE card = :c) USING (merchant) GROUP BY amt", []
        ),
        (
            // A computed group key made of the other instance's raw value.
            "computed-key-by-ordinal",
            "SELECT a2.amount + 0 AS k, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 "
                + "WHERE a2.card = :c GROUP BY 1", ["k"]
        ),
        (
            "computed-key-by-alias",
            "SELECT a2.amount + 0 AS k, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 "
                + "WHERE a2.card = :c GROUP BY k", ["k"]
        ),
        (
            "computed-key-by-expression",
            "SELECT a2.amount + 0 AS k, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 "
                + "WHERE a2.card = :c GROUP BY a2.amount + 0", ["k"]
        ),
        (
            // Not output, but the groups split by it: the rows tell the other instance's distinct values.
            "hidden-group-term",
            "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 WHERE a2.card = :c "
                + "GROUP BY a1.merchant, a2.amount", []
        ),
        (
            // A computed column that is not an aggregate: one arbitrary record of the other instance (here c11's).
            "bare-computed-other-instance",
            "SELECT a1.merchant, a2.amount + 0 AS k, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1, a_tx a2 "
                + "WHERE a2.card = :c GROUP BY a1.merchant", ["k"]
        ),
        (
            "bare-computed-unqualified",
            "SELECT a_tx.merchant, amt + 0 AS k, COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx, "
                + "(SELECT amount AS amt FROM a_tx WHERE card = :c) GROUP BY a_tx.merchant", ["k"]
        ),
        (
            "aggregate-of-other-instance",
            "SELECT a1.merchant, MAX(a2.amount) AS k, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 "
                + "JOIN a_tx a2 ON a2.card = :c GROUP BY a1.merchant", ["k"]
        ),
        (
            // A scalar subquery picks one card's value for every group (computed, so groupedColumns lets it by).
            "scalar-subquery-computed",
            "SELECT a_tx.merchant, (SELECT c.amount FROM a_tx c WHERE c.card = :c) + 0 AS amt, "
                + "COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx GROUP BY a_tx.merchant", ["amt"]
        ),
        (
            "scalar-subquery-group-key",
            "SELECT COUNT(*) AS n, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx "
                + "GROUP BY (SELECT c.amount FROM a_tx c WHERE c.card = :c)", ["n"]
        ),
    ]

    @Test("countedInstance: a raw output or group term from another instance than the counted one is refused")
    func rawColumnOfAnotherInstance() throws {
        for (id, sql, computed) in Self.otherInstanceCases {
            let contract = contract(
                adding: query(id, sql, computed: computed, noise: [], parameters: [.init(name: "c", type: .text)])
            )
            let engine = try engine(contract)
            do {
                let outcome = try engine.run(request(id, parameters: ["c": .text("c11")]))
                Issue.record("\(id) ran: \(outcome.rows), \(outcome.suppressedGroups) suppressed")
            } catch {
                #expect(error.code == .outputRule && error.reason.hasPrefix("countedInstance:"), "\(id): \(error)")
            }
            expectError(.outputRule, "countedInstance") { try engine.validate(try #require(contract.query(id))) }
        }
    }

    @Test("countedInstance: other routes are refused by their own rule, or the threshold still holds")
    func otherInstanceRoutes() throws {
        let parameters: [Contract.Parameter] = [.init(name: "c", type: .text)]
        // A raw scalar subquery is not a plain column reference.
        let scalar =
            "SELECT a_tx.merchant, (SELECT c.amount FROM a_tx c WHERE c.card = :c) AS amt, "
            + "COUNT(DISTINCT a_tx.card) AS _ids_a_tx FROM a_tx GROUP BY a_tx.merchant"
        // A window over the groups would attach the total count to every group.
        let window = "SELECT amount, SUM(COUNT(DISTINCT card)) OVER () AS _ids_a_tx FROM a_tx GROUP BY amount"
        for (id, sql, rule) in [
            ("scalar-subquery-raw", scalar, "groupedColumns"), ("window-count", window, "minIdentities"),
        ] {
            let contract = contract(adding: query(id, sql, computed: [], noise: [], parameters: parameters))
            let engine = try engine(contract)
            expectError(.outputRule, rule) { _ = try engine.run(request(id, parameters: ["c": .text("c11")])) }
        }
        // A correlated subquery in WHERE would pick the groups by one record (each group still counting its own
        // identities): a subquery is allowed only as a FROM item.
        let filtered =
            "SELECT a1.amount, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 WHERE EXISTS "
            + "(SELECT 1 FROM a_tx a2 WHERE a2.card = :c AND a2.amount = a1.amount) GROUP BY a1.amount"
        let engine = try engine(
            contract(adding: query("filtered", filtered, computed: [], noise: [], parameters: parameters))
        )
        expectError(.outputRule, "subqueries") {
            _ = try engine.run(request("filtered", parameters: ["c": .text("c11")]))
        }
    }

    @Test("countedInstance: outputs of the counted instance still run (self-join, qualified by a single table)")
    func countedInstanceHonestForms() throws {
        for (id, sql) in [
            (
                "self-join-counted-side",
                "SELECT a1.merchant, COUNT(DISTINCT a1.card) AS _ids_a_tx FROM a_tx a1 JOIN a_tx a2 "
                    + "ON a2.card = a1.card GROUP BY a1.merchant"
            ),
            (
                "qualified-single-table",
                "SELECT t.merchant, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx AS t GROUP BY t.merchant"
            ),
            (
                "computed-key-single-table",
                "SELECT lower(merchant) AS m, COUNT(DISTINCT card) AS _ids_a_tx FROM a_tx GROUP BY lower(merchant)"
            ),
        ] {
            let engine = try engine(contract(adding: query(id, sql, computed: ["m"], noise: [])))
            try engine.validate(try #require(engine.contract.query(id)))
            let outcome = try engine.run(request(id, parameters: [:]))
            #expect(outcome.rows == [[.text("m1")], [.text("m3")]], "\(id)")
            #expect(outcome.suppressedGroups == 1, "\(id)")
        }
        // A computed column over the counted instance of a self-join (keywords, functions, literals are no names).
        let sql =
            "SELECT a1.merchant, SUM(CASE WHEN a1.amount > 50 THEN 1 ELSE 0 END) AS m, COUNT(DISTINCT a1.card) AS "
            + "_ids_a_tx FROM a_tx a1 JOIN a_tx a2 ON a2.card = a1.card GROUP BY a1.merchant"
        let engine = try engine(contract(adding: query("computed-counted", sql, computed: ["m"], noise: [])))
        let outcome = try engine.run(request("computed-counted", parameters: [:]))
        #expect(outcome.rows == [[.text("m1"), .integer(5)], [.text("m3"), .integer(3)]])
    }
}
