import EnclaveCore

extension Contract {
    /// The prefix of the reserved output columns that carry a group's distinct identity count per data set
    /// (`_ids_<dataset>`); see `CleanRoomEngine`'s output rules.
    public static let identityCountPrefix = "_ids_"

    /// SQLite's names for a table's rowid (lower case): no data set column may be called so.
    public static let rowidNames: Set<String> = ["rowid", "oid", "_rowid_"]

    /// Whether `name` is a safe SQL identifier for a table, column or parameter: an ASCII letter, then letters,
    /// digits or `_`, at most 64 bytes, not starting with `sqlite_` (SQLite's own tables).
    public static func isIdentifier(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 64, first.isLetter else { return false }
        guard !name.lowercased().hasPrefix("sqlite_") else { return false }
        return bytes.allSatisfy { $0.isLetter || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// Check that the contract is consistent: unique names, every reference resolves, roles fit.
    ///
    /// - Throws: ``CleanRoomError/Code/invalidContract`` naming the first problem.
    public func validate() throws(CleanRoomError) {
        func fail(_ reason: String) -> CleanRoomError { CleanRoomError(.invalidContract, reason) }
        func unique(_ names: [String], _ what: String) throws(CleanRoomError) {
            var seen: Set<String> = []
            for name in names where !seen.insert(name).inserted { throw fail("duplicate \(what) \"\(name)\"") }
        }
        guard !parties.isEmpty else { throw fail("a contract needs at least one party") }
        guard !name.isEmpty else { throw fail("the contract has no name") }
        try unique(parties.map(\.name), "party name")
        try unique(parties.map { Base64URL.encode($0.signingKey.x963Representation) }, "party signing key")
        for party in parties {
            guard !party.name.isEmpty, party.name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
            else { throw fail("party name \"\(party.name)\" is empty or has control characters") }
            guard !party.roles.isEmpty else { throw fail("party \(party.name) has no role") }
            try unique(party.roles.map(\.rawValue), "role of \(party.name)")
        }
        func party(_ name: String, _ role: Role, _ what: String) throws(CleanRoomError) {
            guard let found = self.party(name) else { throw fail("\(what) names \"\(name)\", not a party") }
            guard found.roles.contains(role) else { throw fail("\(what): party \(name) is not a \(role.rawValue)") }
        }
        try unique(dataSets.map { $0.name.lowercased() }, "data set")
        for set in dataSets {
            guard Self.isIdentifier(set.name), !set.name.hasPrefix(Self.identityCountPrefix) else {
                throw fail("data set name \"\(set.name)\" is not an identifier")
            }
            try party(set.owner, .dataOwner, "data set \(set.name)")
            guard !set.columns.isEmpty else { throw fail("data set \(set.name) has no columns") }
            try unique(set.columns.map { $0.name.lowercased() }, "column of \(set.name)")
            for column in set.columns where !Self.isIdentifier(column.name) {
                throw fail("column name \"\(column.name)\" of \(set.name) is not an identifier")
            }
            // The engine checks identity counts with a probe that reads the table's rowid by these names.
            for column in set.columns where Self.rowidNames.contains(column.name.lowercased()) {
                throw fail("column name \"\(column.name)\" of \(set.name) is one of SQLite's names for the rowid")
            }
            let names = Set(set.columns.map(\.name))
            try unique(set.readable, "readable column of \(set.name)")
            for column in set.readable where !names.contains(column) {
                throw fail("data set \(set.name): readable column \(column) is not a column")
            }
            guard set.readable.contains(set.identity) else {
                throw fail("data set \(set.name): identity column \(set.identity) must be a readable column")
            }
        }
        try unique(queries.map(\.id), "query ID")
        for query in queries {
            guard !query.id.isEmpty, query.id.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                throw fail("query ID \"\(query.id)\" is empty or has spaces or control characters")
            }
            guard !query.sql.isEmpty else { throw fail("query \(query.id) has no SQL") }
            let tokens = SQLTokens(query.sql)
            guard !tokens.hasNUL else { throw fail("query \(query.id): the SQL has a NUL byte") }
            if let offset = tokens.illegal {
                throw fail("query \(query.id): the SQL has a token SQLite cannot read at byte \(offset)")
            }
            if let keyword = tokens.compoundOperator {
                throw fail(
                    "query \(query.id) uses \(keyword): compound SELECTs (UNION, INTERSECT, EXCEPT, VALUES lists, "
                        + "recursive CTEs) are refused, because SQLite reports a compound's column names and origins "
                        + "from one arm only"
                )
            }
            try unique(query.parameters.map { $0.name.lowercased() }, "parameter of \(query.id)")
            for parameter in query.parameters where !Self.isIdentifier(parameter.name) {
                throw fail("query \(query.id): parameter name \"\(parameter.name)\" is not an identifier")
            }
            guard !query.runners.isEmpty else { throw fail("query \(query.id) has no runner") }
            try unique(query.runners, "runner of \(query.id)")
            for runner in query.runners { try party(runner, .analyst, "query \(query.id)") }
            guard !query.reads.isEmpty else { throw fail("query \(query.id) reads no data set") }
            try unique(query.reads, "data set read by \(query.id)")
            for read in query.reads where dataSet(read) == nil {
                throw fail("query \(query.id) reads \(read), not a data set of the contract")
            }
            try unique(query.computed, "computed column of \(query.id)")
            try unique(query.noise.map(\.column), "noised column of \(query.id)")
        }
        try unique(outputRules.map(\.owner), "output rule owner")
        for rule in outputRules {
            try party(rule.owner, .dataOwner, "output rule")
            try unique(rule.neverOutput, "never-output column of \(rule.owner)")
            for entry in rule.neverOutput {
                let pieces = entry.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard pieces.count == 2, let set = dataSet(pieces[0]),
                    set.columns.contains(where: { $0.name == pieces[1] })
                else {
                    throw fail("output rule of \(rule.owner): \"\(entry)\" is not a dataset.column of the contract")
                }
                guard set.owner == rule.owner else {
                    throw fail("output rule of \(rule.owner): \(entry) belongs to \(set.owner)")
                }
            }
            if let privacy = rule.privacy, privacy.epsilonMilli > privacy.budgetMilli {
                throw fail("output rule of \(rule.owner): ε per query is larger than the budget")
            }
        }
        for set in dataSets where outputRule(set.owner) == nil {
            throw fail("owner \(set.owner) of \(set.name) has no output rule")
        }
        try unique(recipients.map(\.party), "recipient")
        for recipient in recipients { try party(recipient.party, .resultRecipient, "recipient") }
        for party in parties
        where party.roles.contains(.resultRecipient) && !recipients.contains(where: { $0.party == party.name }) {
            throw fail("result recipient \(party.name) has no recipient key")
        }
    }
}

extension UInt8 {
    fileprivate var isLetter: Bool { (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }
}
