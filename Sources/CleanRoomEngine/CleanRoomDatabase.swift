internal import CCleanRoomSQLite
public import CleanRoom
import Synchronization
internal import VaporCSQLite

/// The clean room's in-memory SQLite database: the contract's tables, locked down.
///
/// - Tables are created from the contract's schema as `STRICT` tables; nothing else exists.
/// - The connection is hardened (`sqlite3_db_config`: defensive, untrusted schema, no triggers, no views, no
///   double-quoted strings; extension loading is compiled out) and limited (`sqlite3_limit`: no attached databases,
///   short SQL, shallow expressions, no compound selects, few variables, 1 MiB values).
/// - While a query is prepared and run, an authorizer (`sqlite3_set_authorizer`) allows only `SELECT`, reads of the
///   readable columns of the data sets the query declares, and functions of an allow-list; it denies everything
///   else (`ATTACH`/`DETACH`, `PRAGMA`, every write, temporary objects, virtual tables, transactions, recursive
///   CTEs) and remembers why, so the refusal names the table, column or function.
/// - Compound SELECTs (`UNION`, `INTERSECT`, `EXCEPT`, `VALUES` lists) are refused (`compoundSelect`): SQLite
///   reports a compound's column names and origins from one arm only, so the output rules, which go by each
///   column's origin, could be shown one arm while another outputs forbidden values. SQLite refuses them itself
///   (`SQLITE_LIMIT_COMPOUND_SELECT` is 1) and the query plan of each query is checked for compound steps (a
///   trailing `VALUES` arm is exempt from the limit); `QueryEngine` also refuses the words in the SQL text.
/// - Each query runs under a time limit (`QueryWatchdog`'s thread calls `sqlite3_interrupt`; never a Dispatch
///   timer, which would start Dispatch's worker pool inside the enclave) and a memory limit
///   (`sqlite3_hard_heap_limit64`, enforced because memory accounting is turned on at load, see
///   `CCleanRoomSQLite`); either failure leaves the database usable for the next query.
///
/// One connection, used under a lock: `@unchecked Sendable` because the handle is only touched while `lock` is
/// held, except `sqlite3_interrupt`, which SQLite documents as safe from any thread.
public final class CleanRoomDatabase: @unchecked Sendable {
    /// Per-query limits.
    public struct Limits: Hashable, Sendable {
        /// Wall-clock time one query may run.
        public var time: Duration
        /// SQLite heap one query may add to what the loaded data already uses.
        public var memoryBytes: Int64
        /// The most rows one query may return (before output rules).
        public var maxRows: Int

        /// Creates one from its members, each as documented on its property.
        public init(time: Duration = .seconds(30), memoryBytes: Int64 = 256 << 20, maxRows: Int = 1_000_000) {
            self.time = time
            self.memoryBytes = memoryBytes
            self.maxRows = maxRows
        }
    }

    /// A result before output rules: column names, their table origins, rows.
    public struct RawResult: Sendable {
        /// Output column names.
        public var columns: [String]
        /// Each column's origin `table.column`, or nil for a computed column.
        public var origins: [String?]
        /// The rows.
        public var rows: [[SQLValue]]
    }

    /// The functions a query may call (lower case). Aggregates that return raw values (`group_concat`,
    /// `json_group_array`…), blob makers (`randomblob`, `zeroblob`) and anything about the engine are absent.
    public static let allowedFunctions: Set<String> = [
        "count", "sum", "total", "avg", "min", "max", "abs", "round", "lower", "upper", "length", "substr",
        "coalesce", "ifnull", "nullif", "iif", "date", "strftime", "julianday", "like", "instr", "trim", "ltrim",
        "rtrim", "replace", "cast",
    ]

    let contract: Contract
    let limits: Limits
    private let handle: OpaquePointer
    private let lock = Mutex<Void>(())
    private let authorizer: Authorizer
    /// The run the watchdog may interrupt: its generation, whether it is running, and its armed deadline.
    private let watchdog = Mutex<(generation: UInt64, running: Bool, ticket: QueryWatchdog.Ticket?)>((0, false, nil))
    /// Queries whose compiled program passed the `EXPLAIN` scan (``checkTablesOpened(_:)``). The schema never changes
    /// after `init` (the authorizer refuses every statement but `SELECT`), so the tables a query's program opens are
    /// the same every time: the scan runs once per query. The authorizer still runs at every prepare.
    private var programsChecked: Set<Contract.Query> = []

    /// What the authorizer allows right now.
    final class Authorizer: @unchecked Sendable {  // unchecked: only touched under the database lock
        enum Mode { case setup, query }
        var mode = Mode.setup
        /// Readable columns by table, for the query being prepared.
        var readable: [String: Set<String>] = [:]
        /// Why the last denial happened.
        var denial: String?
        /// The table whose every column, rowid and unreadable ones included, a probe (never run, so nothing is read)
        /// may name: see `CleanRoomDatabase/Probe`.
        var rowidTable: String?
    }

    /// Open an empty database with the contract's tables.
    ///
    /// - Throws: `CleanRoomError/Code/memoryLimit` when SQLite's memory accounting is off (a heap limit would not
    ///   be enforced), `CleanRoomError/Code/engine` when SQLite fails.
    public init(contract: Contract, limits: Limits = Limits()) throws(CleanRoomError) {
        guard ek_cleanroom_sqlite_memory_accounting() == 1 else {
            throw CleanRoomError(.memoryLimit, "SQLite memory accounting is off, so heap limits would not be enforced")
        }
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY | SQLITE_OPEN_FULLMUTEX
        guard sqlite_nio_sqlite3_open_v2(":memory:", &db, flags, nil) == SQLITE_OK, let db else {
            if let db { sqlite_nio_sqlite3_close_v2(db) }
            throw CleanRoomError(.engine, "cannot open the in-memory database")
        }
        self.handle = db
        self.contract = contract
        self.limits = limits
        self.authorizer = Authorizer()
        let failed = ek_cleanroom_sqlite_harden(UnsafeMutableRawPointer(db))
        guard failed == 0 else {
            throw CleanRoomError(.engine, "cannot harden the database (sqlite3_db_config option \(failed))")
        }
        let settings: [(Int32, Int32)] = [
            (SQLITE_LIMIT_LENGTH, 1 << 20), (SQLITE_LIMIT_SQL_LENGTH, 64 << 10), (SQLITE_LIMIT_COLUMN, 256),
            (SQLITE_LIMIT_EXPR_DEPTH, 64), (SQLITE_LIMIT_COMPOUND_SELECT, 1), (SQLITE_LIMIT_VDBE_OP, 100_000),
            (SQLITE_LIMIT_FUNCTION_ARG, 8), (SQLITE_LIMIT_ATTACHED, 0), (SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000),
            (SQLITE_LIMIT_VARIABLE_NUMBER, 64), (SQLITE_LIMIT_TRIGGER_DEPTH, 1), (SQLITE_LIMIT_WORKER_THREADS, 0),
        ]
        for (limit, value) in settings { sqlite_nio_sqlite3_limit(db, limit, value) }
        sqlite_nio_sqlite3_set_authorizer(
            db,
            { context, action, first, second, database, _ in
                guard let context else { return SQLITE_DENY }
                let state = Unmanaged<Authorizer>.fromOpaque(context).takeUnretainedValue()
                return CleanRoomDatabase.authorize(
                    state,
                    action,
                    first.map { String(cString: $0) },
                    second.map { String(cString: $0) },
                    database.map { String(cString: $0) }
                )
            },
            Unmanaged.passUnretained(authorizer).toOpaque()
        )
        try lock.withLock { _ throws(CleanRoomError) in
            try execute("PRAGMA temp_store = MEMORY")
            for set in contract.dataSets {
                let columns = set.columns.map { "\"\($0.name)\" \(Self.sqlType($0.type))" }.joined(separator: ", ")
                try execute("CREATE TABLE \"\(set.name)\" (\(columns)) STRICT")
            }
            authorizer.mode = .query
        }
    }

    deinit {
        sqlite_nio_sqlite3_close_v2(handle)
    }

    static func sqlType(_ type: Contract.ValueType) -> String {
        switch type {
        case .integer: return "INTEGER"
        case .real: return "REAL"
        case .text, .date: return "TEXT"
        }
    }

    static func authorize(
        _ state: Authorizer,
        _ action: Int32,
        _ first: String?,
        _ second: String?,
        _ database: String?
    ) -> Int32 {
        if state.mode == .setup { return SQLITE_OK }
        switch action {
        case SQLITE_SELECT:
            return SQLITE_OK
        case SQLITE_RECURSIVE:
            state.denial = "compoundSelect: recursive CTEs are not allowed"
            return SQLITE_DENY
        case SQLITE_READ:
            // A probe: prepared to learn where a name resolves, never run. A table none of whose columns is used is
            // announced with an empty column and the schema as written (nil unless qualified).
            if let table = first, table == state.rowidTable, database == "main" || database == nil { return SQLITE_OK }
            guard database == "main", let table = first, let columns = state.readable[table] else {
                state.denial = "table \(first ?? "?") is not a data set this query reads"
                return SQLITE_DENY
            }
            guard let column = second, columns.contains(column) else {
                state.denial = "column \(table).\(second ?? "?") is not readable"
                return SQLITE_DENY
            }
            return SQLITE_OK
        case SQLITE_FUNCTION:
            let name = (second ?? "").lowercased()
            guard allowedFunctions.contains(name) else {
                state.denial = "function \(name) is not allowed"
                return SQLITE_DENY
            }
            return SQLITE_OK
        case SQLITE_ATTACH, SQLITE_DETACH:
            state.denial = "ATTACH and DETACH are not allowed"
            return SQLITE_DENY
        case SQLITE_PRAGMA:
            state.denial = "PRAGMA \(first ?? "") is not allowed"
            return SQLITE_DENY
        default:
            state.denial = "statement kind \(action) is not allowed (only SELECT)"
            return SQLITE_DENY
        }
    }

    /// Run setup SQL of ours (no rows).
    private func execute(_ sql: String) throws(CleanRoomError) {
        var error: UnsafeMutablePointer<CChar>?
        let status = sqlite_nio_sqlite3_exec(handle, sql, nil, nil, &error)
        if let error {
            let message = String(cString: error)
            sqlite_nio_sqlite3_free(error)
            throw CleanRoomError(.engine, "setup failed: \(message)")
        }
        guard status == SQLITE_OK else { throw CleanRoomError(.engine, "setup failed (\(status))") }
    }

    // MARK: - Loading

    /// Insert rows into a data set's table in one transaction: all of them or none.
    ///
    /// - Throws: `CleanRoomError/Code/engine` when an insert fails (then nothing of this call is kept).
    public func insert(_ rows: [[SQLValue]], into dataSet: String) throws(CleanRoomError) {
        try load(dataSet) { insert throws(CleanRoomError) in try insert(rows) }
    }

    /// Load a data set in one transaction: `body` gets an `insert` function to call with batches of rows; when
    /// `body` or an insert throws, everything inserted by this call is rolled back.
    ///
    /// - Throws: `CleanRoomError/Code/wrongContract` for a data set not in the contract, what `body` throws,
    ///   `CleanRoomError/Code/engine` when SQLite fails.
    public func load(
        _ dataSet: String,
        _ body: (_ insert: ([[SQLValue]]) throws(CleanRoomError) -> Void) throws(CleanRoomError) -> Void
    ) throws(CleanRoomError) {
        guard let set = contract.dataSet(dataSet) else {
            throw CleanRoomError(.wrongContract, "the contract has no data set \(dataSet)")
        }
        try lock.withLock { _ throws(CleanRoomError) in
            authorizer.mode = .setup
            defer { authorizer.mode = .query }
            let placeholders = Array(repeating: "?", count: set.columns.count).joined(separator: ", ")
            let statement = try prepare("INSERT INTO \"\(set.name)\" VALUES (\(placeholders))")
            defer { sqlite_nio_sqlite3_finalize(statement) }
            try execute("BEGIN")
            do throws(CleanRoomError) {
                try body { rows throws(CleanRoomError) in
                    for row in rows {
                        guard row.count == set.columns.count else {
                            throw CleanRoomError(.badRows, "a row of \(set.name) has \(row.count) values")
                        }
                        for (index, value) in row.enumerated() { try bind(value, at: Int32(index + 1), statement) }
                        let status = sqlite_nio_sqlite3_step(statement)
                        guard status == SQLITE_DONE else {
                            throw CleanRoomError(.engine, "insert into \(set.name) failed: \(message)")
                        }
                        sqlite_nio_sqlite3_reset(statement)
                    }
                }
                try execute("COMMIT")
            } catch {
                try? execute("ROLLBACK")
                throw error
            }
        }
    }

    /// The number of rows in a data set's table.
    public func rowCount(_ dataSet: String) throws(CleanRoomError) -> Int {
        guard let set = contract.dataSet(dataSet) else {
            throw CleanRoomError(.wrongContract, "the contract has no data set \(dataSet)")
        }
        return try lock.withLock { _ throws(CleanRoomError) in
            authorizer.mode = .setup
            defer { authorizer.mode = .query }
            let statement = try prepare("SELECT COUNT(*) FROM \"\(set.name)\"")
            defer { sqlite_nio_sqlite3_finalize(statement) }
            guard sqlite_nio_sqlite3_step(statement) == SQLITE_ROW else { throw CleanRoomError(.engine, message) }
            return Int(sqlite_nio_sqlite3_column_int64(statement, 0))
        }
    }

    // MARK: - Queries

    /// Interrupt the run `generation` if it is still the one running (never a later one).
    private func interrupt(generation: UInt64) {
        watchdog.withLock { state in
            if state.generation == generation, state.running { sqlite_nio_sqlite3_interrupt(handle) }
        }
    }

    /// Whether a query's deadline is still armed with the watchdog (only while a query runs).
    package var isWatchdogArmed: Bool {
        guard let ticket = watchdog.withLock({ $0.ticket }) else { return false }
        return QueryWatchdog.shared.isArmed(ticket)
    }

    private var message: String { String(cString: sqlite_nio_sqlite3_errmsg(handle)) }

    private func prepare(_ sql: String) throws(CleanRoomError) -> OpaquePointer {
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        authorizer.denial = nil
        let status = sql.withCString { text in
            let status = sqlite_nio_sqlite3_prepare_v2(handle, text, -1, &statement, &tail)
            // Exactly one statement: nothing but whitespace may follow it.
            if status == SQLITE_OK, let tail, String(cString: tail).contains(where: { !$0.isWhitespace && $0 != ";" }) {
                return SQLITE_MISUSE
            }
            return status
        }
        guard status == SQLITE_OK, let statement else {
            if let statement { sqlite_nio_sqlite3_finalize(statement) }
            if status == SQLITE_MISUSE { throw CleanRoomError(.accessDenied, "a query is exactly one statement") }
            if status == SQLITE_AUTH || authorizer.denial != nil {
                throw CleanRoomError(.accessDenied, authorizer.denial ?? "not authorized")
            }
            if status == SQLITE_NOMEM { throw CleanRoomError(.memoryLimit, "out of memory preparing the query") }
            let message = self.message
            if message.contains("compound SELECT") {
                throw CleanRoomError(.outputRule, "compoundSelect: SQLite refused the query: \(message)")
            }
            throw CleanRoomError(.engine, "the query does not compile: \(message)")
        }
        return statement
    }

    private func bind(_ value: SQLValue, at index: Int32, _ statement: OpaquePointer) throws(CleanRoomError) {
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        let status: Int32
        switch value {
        case .null: status = sqlite_nio_sqlite3_bind_null(statement, index)
        case .integer(let number): status = sqlite_nio_sqlite3_bind_int64(statement, index, number)
        case .real(let number): status = sqlite_nio_sqlite3_bind_double(statement, index, number)
        case .text(let text):
            // With its UTF-8 byte count: a NUL inside is bound too (with -1, SQLite would stop at it, so a parameter
            // "a\0b" would run as "a" while the receipt records "a\0b").
            var text = text
            status = text.withUTF8 { utf8 in
                guard let length = Int32(exactly: utf8.count) else { return SQLITE_TOOBIG }
                guard let base = utf8.baseAddress else {
                    return sqlite_nio_sqlite3_bind_text(statement, index, "", 0, transient)
                }
                return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                    sqlite_nio_sqlite3_bind_text(statement, index, $0, length, transient)
                }
            }
        }
        guard status == SQLITE_OK else { throw CleanRoomError(.engine, "cannot bind a value: \(message)") }
    }

    /// Prepares, and never runs, a variant of the query being checked (its SQL with a piece replaced), under the
    /// same authorizer, and returns its output columns and their origins: how the output rules let SQLite resolve a
    /// name of the query (see `QueryEngine`'s identity counts). The second argument names a table whose rowid (no
    /// query may read it) and every column (`q.*`) the variant may name.
    public typealias Probe = (_ sql: String, _ rowidOf: String?) throws(CleanRoomError) -> (
        columns: [String], origins: [String?]
    )

    /// Prepare `query` under the authorizer and describe its output columns, without running it.
    ///
    /// - Parameters:
    ///   - query: The approved query.
    ///   - check: Called with the columns, their origins and a ``Probe`` while the query is prepared.
    /// - Throws: `CleanRoomError/Code/accessDenied` naming what the authorizer refused,
    ///   `CleanRoomError/Code/outputRule` (`compoundSelect`), what `check` throws.
    @discardableResult
    public func describe(
        _ query: Contract.Query,
        checking check: (_ columns: [String], _ origins: [String?], _ probe: Probe) throws(CleanRoomError) -> Void =
            { _, _, _ in }
    ) throws(CleanRoomError) -> (columns: [String], origins: [String?]) {
        try lock.withLock { _ throws(CleanRoomError) in
            let statement = try prepareQuery(query)
            defer { sqlite_nio_sqlite3_finalize(statement) }
            let (names, origins) = columns(statement)
            try check(names, origins) { sql, table throws(CleanRoomError) in try probe(sql, rowidOf: table) }
            return (names, origins)
        }
    }

    /// A ``Probe``: called with the lock held, while the query being checked is prepared (so the authorizer has its
    /// readable columns).
    private func probe(
        _ sql: String,
        rowidOf table: String?
    ) throws(CleanRoomError) -> (
        columns: [String], origins: [String?]
    ) {
        authorizer.rowidTable = table
        defer { authorizer.rowidTable = nil }
        let statement = try prepare(sql)
        defer { sqlite_nio_sqlite3_finalize(statement) }
        return columns(statement)
    }

    private func prepareQuery(_ query: Contract.Query) throws(CleanRoomError) -> OpaquePointer {
        var readable: [String: Set<String>] = [:]
        for name in query.reads {
            if let set = contract.dataSet(name) { readable[set.name] = Set(set.readable) }
        }
        authorizer.readable = readable
        if !programsChecked.contains(query) {
            try checkTablesOpened(query)
            try checkPlan(query)
            programsChecked.insert(query)
        }
        return try prepare(query.sql)
    }

    /// The root page of each contract table (read once, in setup mode).
    private lazy var rootPages: [Int64: String] = {
        var pages: [Int64: String] = [:]
        let mode = authorizer.mode
        authorizer.mode = .setup
        defer { authorizer.mode = mode }
        guard let statement = try? prepare("SELECT name, rootpage FROM sqlite_schema WHERE type = 'table'") else {
            return pages
        }
        defer { sqlite_nio_sqlite3_finalize(statement) }
        while sqlite_nio_sqlite3_step(statement) == SQLITE_ROW {
            if let name = sqlite_nio_sqlite3_column_text(statement, 0) {
                pages[sqlite_nio_sqlite3_column_int64(statement, 1)] = String(cString: name)
            }
        }
        return pages
    }()

    /// The authorizer's second line: the tables the compiled program opens must be among those the query
    /// declares. SQLite does not call the authorizer for every way a table is touched (a `JOIN … USING` reads the
    /// other table's join column without a `SQLITE_READ`), so the `EXPLAIN` program is scanned for `OpenRead` of
    /// any table's root page.
    private func checkTablesOpened(_ query: Contract.Query) throws(CleanRoomError) {
        let pages = rootPages
        let statement = try prepare("EXPLAIN " + query.sql)
        defer { sqlite_nio_sqlite3_finalize(statement) }
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw CleanRoomError(.engine, "cannot inspect the query: \(message)") }
            guard let opcode = sqlite_nio_sqlite3_column_text(statement, 1) else { continue }
            let name = String(cString: opcode)
            guard name == "OpenRead" || name == "OpenWrite" || name == "ReopenIdx" else { continue }
            let page = sqlite_nio_sqlite3_column_int64(statement, 3)
            let database = sqlite_nio_sqlite3_column_int64(statement, 4)
            guard database == 0, let table = pages[page], query.reads.contains(table) else {
                throw CleanRoomError(
                    .accessDenied,
                    "table \(pages[page] ?? "page \(page)") is opened but is not a data set this query reads"
                )
            }
        }
    }

    /// SQLite's own account of compound SELECTs: the query plan (`EXPLAIN QUERY PLAN`) of a compound has a
    /// `COMPOUND QUERY` or `MERGE (…)` step, a recursive CTE a `RECURSIVE STEP`, a `VALUES` list a `VALUES CLAUSE`
    /// or constant-row scan. Backs the compound limit, which exempts a compound whose last arm is `VALUES`.
    private func checkPlan(_ query: Contract.Query) throws(CleanRoomError) {
        let statement = try prepare("EXPLAIN QUERY PLAN " + query.sql)
        defer { sqlite_nio_sqlite3_finalize(statement) }
        let markers = ["COMPOUND", "MERGE (", "RECURSIVE STEP", "SETUP", "LEFT-MOST SUBQUERY", "VALUES CLAUSE"]
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw CleanRoomError(.engine, "cannot inspect the query: \(message)") }
            guard let text = sqlite_nio_sqlite3_column_text(statement, 3) else { continue }
            let detail = String(cString: text)
            // `SCAN <n> CONSTANT ROWS`: a VALUES list run as a compound of constant rows.
            let constantRows =
                detail.hasPrefix("SCAN ") && detail.dropFirst(5).drop(while: \.isNumber).hasPrefix(" CONSTANT ROW")
            if markers.contains(where: { detail.hasPrefix($0) }) || detail.contains("VALUES CLAUSE") || constantRows {
                throw CleanRoomError(.outputRule, "compoundSelect: the query plan has a compound step (\(detail))")
            }
        }
    }

    private func columns(_ statement: OpaquePointer) -> (columns: [String], origins: [String?]) {
        let count = sqlite_nio_sqlite3_column_count(statement)
        var names: [String] = []
        var origins: [String?] = []
        for index in 0..<count {
            names.append(sqlite_nio_sqlite3_column_name(statement, index).map { String(cString: $0) } ?? "")
            if let table = sqlite_nio_sqlite3_column_table_name(statement, index),
                let column = sqlite_nio_sqlite3_column_origin_name(statement, index)
            {
                origins.append("\(String(cString: table)).\(String(cString: column))")
            } else {
                origins.append(nil)
            }
        }
        return (names, origins)
    }

    /// Run an approved query with its parameters bound by name (`:name`), under the time and memory limits.
    ///
    /// The caller (``QueryEngine``) has checked that the query is approved, the runner allowed and the
    /// parameters typed; this binds them and enforces the authorizer and the limits.
    /// - Throws: `CleanRoomError/Code/accessDenied`, `CleanRoomError/Code/timeLimit`,
    ///   `CleanRoomError/Code/memoryLimit`, `CleanRoomError/Code/limitExceeded` (too many rows),
    ///   `CleanRoomError/Code/badParameter`, `CleanRoomError/Code/engine`.
    /// - Parameters:
    ///   - query: The approved query of the contract.
    ///   - parameters: Its parameters by name, already typed against the query's declaration.
    ///   - check: Called with the output columns, their origins and a ``Probe`` once the query is prepared, before
    ///     anything is bound or run (what it throws ends the run): the output rules, without preparing twice.
    public func run(
        _ query: Contract.Query,
        parameters: [String: SQLValue],
        checkingColumns check: (_ columns: [String], _ origins: [String?], _ probe: Probe) throws(CleanRoomError) ->
            Void =
            { _, _, _ in }
    ) throws(CleanRoomError) -> RawResult {
        try lock.withLock { _ throws(CleanRoomError) in
            let statement = try prepareQuery(query)
            defer { sqlite_nio_sqlite3_finalize(statement) }
            let (names, origins) = columns(statement)
            try check(names, origins) { sql, table throws(CleanRoomError) in try probe(sql, rowidOf: table) }
            let bound = sqlite_nio_sqlite3_bind_parameter_count(statement)
            guard Int(bound) == parameters.count else {
                throw CleanRoomError(.badParameter, "the query takes \(bound) parameters, \(parameters.count) given")
            }
            for (name, value) in parameters {
                let index = sqlite_nio_sqlite3_bind_parameter_index(statement, ":" + name)
                guard index > 0 else { throw CleanRoomError(.badParameter, "the query has no parameter :\(name)") }
                try bind(value, at: index, statement)
            }

            // Memory: what the data already holds plus this query's allowance; restored afterwards.
            let used = sqlite_nio_sqlite3_memory_used()
            let previous = sqlite_nio_sqlite3_hard_heap_limit64(-1)
            sqlite_nio_sqlite3_hard_heap_limit64(used + limits.memoryBytes)
            defer { sqlite_nio_sqlite3_hard_heap_limit64(previous) }

            // Time: the watchdog interrupts this run (and only this one) when the limit passes; its deadline is
            // disarmed when the run ends.
            let generation = watchdog.withLock { state in
                state.generation += 1
                state.running = true
                return state.generation
            }
            let ticket = QueryWatchdog.shared.arm(after: limits.time) { [weak self] in
                self?.interrupt(generation: generation)
            }
            watchdog.withLock { $0.ticket = ticket }
            defer {
                QueryWatchdog.shared.disarm(ticket)
                watchdog.withLock { $0.running = false }
            }

            var rows: [[SQLValue]] = []
            while true {
                let status = sqlite_nio_sqlite3_step(statement)
                if status == SQLITE_DONE { break }
                guard status == SQLITE_ROW else {
                    switch status & 0xFF {
                    case SQLITE_INTERRUPT:
                        throw CleanRoomError(.timeLimit, "the query ran longer than its limit of \(limits.time)")
                    case SQLITE_NOMEM:
                        throw CleanRoomError(
                            .memoryLimit,
                            "the query needed more than its memory limit of \(limits.memoryBytes) bytes"
                        )
                    case SQLITE_TOOBIG:
                        throw CleanRoomError(.memoryLimit, "the query built a value larger than the 1 MiB limit")
                    case SQLITE_AUTH:
                        throw CleanRoomError(.accessDenied, authorizer.denial ?? "not authorized")
                    default:
                        throw CleanRoomError(.engine, "the query failed: \(message)")
                    }
                }
                guard rows.count < limits.maxRows else {
                    throw CleanRoomError(.limitExceeded, "the query returned more than \(limits.maxRows) rows")
                }
                var row: [SQLValue] = []
                row.reserveCapacity(names.count)
                for index in 0..<Int32(names.count) {
                    switch sqlite_nio_sqlite3_column_type(statement, index) {
                    case SQLITE_INTEGER: row.append(.integer(sqlite_nio_sqlite3_column_int64(statement, index)))
                    case SQLITE_FLOAT: row.append(.real(sqlite_nio_sqlite3_column_double(statement, index)))
                    case SQLITE_NULL: row.append(.null)
                    default:
                        if let text = sqlite_nio_sqlite3_column_text(statement, index) {
                            // By its byte count: a NUL inside a value is kept.
                            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
                            row.append(
                                .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
                            )
                        } else {
                            row.append(.null)
                        }
                    }
                }
                rows.append(row)
            }
            return RawResult(columns: names, origins: origins, rows: rows)
        }
    }
}
