/// Recursive descent for ``AttestationPolicy``, over the tokens of ``PolicyLexer``.
struct PolicyParser {
    typealias Kind = PolicyLexer.Kind
    typealias Token = PolicyLexer.Token

    /// The longest policy accepted, in bytes.
    static let maxLength = 256 << 10
    static let maxRules = 1024
    /// The most conditions one rule may join with `&&` (Microsoft's sample policies use a handful): each one
    /// multiplies the claims an evaluation may try.
    static let maxConditions = 16
    /// The most predicates one condition may hold (`[type=="…", value==…]`; real policies use two or three).
    static let maxPredicates = 64

    private var tokens: [Token] = []
    private var index = 0

    init(text: String) throws(PolicySyntaxError) {
        guard text.utf8.count <= Self.maxLength else {
            throw PolicySyntaxError(line: 1, column: 1, message: "the policy is longer than \(Self.maxLength) bytes")
        }
        tokens = try PolicyLexer.tokenize(Array(text.unicodeScalars))
    }

    private var current: Token { tokens[index] }

    /// At most 64 characters of `text` (input quoted in a message): a message never echoes a long token back.
    static func shown(_ text: some StringProtocol) -> String {
        text.count > 64 ? String(text.prefix(64)) + "…" : String(text)
    }

    private func error(_ message: String) -> PolicySyntaxError {
        PolicySyntaxError(line: current.line, column: current.column, message: message)
    }

    private func describe(_ kind: Kind) -> String {
        switch kind {
        case .identifier(let word): "'\(Self.shown(word))'"
        case .string(let text): "\"\(Self.shown(text))\""
        case .number(let number): Self.shown(number)
        case .symbol(let symbol): "'\(symbol)'"
        case .end: "the end of the policy"
        }
    }

    private mutating func expect(_ symbol: String) throws(PolicySyntaxError) {
        guard current.kind == .symbol(symbol) else {
            throw error("expected '\(symbol)', found \(describe(current.kind))")
        }
        index += 1
    }

    private mutating func accept(_ symbol: String) -> Bool {
        guard current.kind == .symbol(symbol) else { return false }
        index += 1
        return true
    }

    private mutating func identifier(_ what: String) throws(PolicySyntaxError) -> String {
        guard case .identifier(let word) = current.kind else {
            throw error("expected \(what), found \(describe(current.kind))")
        }
        index += 1
        return word
    }

    mutating func document() throws(PolicySyntaxError) -> (
        version: String, configuration: [AttestationPolicy.Rule], authorization: [AttestationPolicy.Rule],
        issuance: [AttestationPolicy.Rule]
    ) {
        guard try identifier("'version'").lowercased() == "version" else {
            index -= 1
            throw error("a policy starts with version=1.0;")
        }
        try expect("=")
        guard case .number(let version) = current.kind else { throw error("expected a version number") }
        guard ["1.0", "1.1", "1.2"].contains(version) else {
            throw error("unsupported policy version \(Self.shown(version))")
        }
        index += 1
        try expect(";")
        var sections: [String: [AttestationPolicy.Rule]] = [:]
        var total = 0
        while current.kind != .end {
            let name = try identifier("a section name").lowercased()
            guard ["configurationrules", "authorizationrules", "issuancerules"].contains(name) else {
                index -= 1
                throw error(
                    "unknown section '\(Self.shown(name))' (expected authorizationrules, issuancerules or configurationrules)"
                )
            }
            guard sections[name] == nil else {
                index -= 1
                throw error("section \(Self.shown(name)) appears twice")
            }
            try expect("{")
            var rules: [AttestationPolicy.Rule] = []
            while !accept("}") {
                guard current.kind != .end else { throw error("expected '}' to close \(Self.shown(name))") }
                rules.append(try rule(section: name))
                total += 1
                guard total <= Self.maxRules else { throw error("more than \(Self.maxRules) rules") }
                _ = accept(";")
            }
            _ = accept(";")
            sections[name] = rules
        }
        guard sections["authorizationrules"] != nil else {
            throw error("the policy has no authorizationrules section")
        }
        return (
            version, sections["configurationrules"] ?? [], sections["authorizationrules"] ?? [],
            sections["issuancerules"] ?? []
        )
    }

    private mutating func rule(section: String) throws(PolicySyntaxError) -> AttestationPolicy.Rule {
        let line = current.line
        var conditions: [AttestationPolicy.Condition] = []
        var identifiers: Set<String> = []
        if current.kind != .symbol("=>") {
            repeat {
                let condition = try self.condition(known: identifiers)
                if let name = condition.identifier {
                    guard identifiers.insert(name).inserted else {
                        throw error("the identifier \(Self.shown(name)) is used twice in one rule")
                    }
                }
                conditions.append(condition)
                guard conditions.count < Self.maxConditions || current.kind != .symbol("&&") else {
                    throw error("a rule has more than \(Self.maxConditions) conditions")
                }
            } while accept("&&")
        }
        try expect("=>")
        let action = try self.action(known: identifiers, section: section)
        return AttestationPolicy.Rule(conditions: conditions, action: action, line: line)
    }

    private mutating func condition(known: Set<String>) throws(PolicySyntaxError) -> AttestationPolicy.Condition {
        var name: String?
        if case .identifier(let word) = current.kind, tokens[index + 1].kind == .symbol(":") {
            name = word
            index += 2
        }
        try expect("[")
        var predicates: [AttestationPolicy.Predicate] = []
        repeat {
            let propertyName = try identifier("type, value or issuer")
            guard let property = AttestationPolicy.Property(rawValue: propertyName.lowercased()) else {
                index -= 1
                throw error("unknown claim property '\(Self.shown(propertyName))' (type, value or issuer)")
            }
            let comparison: AttestationPolicy.Comparison
            switch current.kind {
            case .symbol("="), .symbol("=="): comparison = .equal
            case .symbol(let symbol):
                guard let parsed = AttestationPolicy.Comparison(rawValue: symbol) else {
                    throw error("expected a comparison, found '\(symbol)'")
                }
                comparison = parsed
            default: throw error("expected a comparison, found \(describe(current.kind))")
            }
            if property != .value, comparison != .equal, comparison != .notEqual {
                throw error("\(property.rawValue) can only be compared with == or !=")
            }
            index += 1
            predicates.append(.init(property: property, comparison: comparison, operand: try operand(known: known)))
            guard predicates.count < Self.maxPredicates || current.kind != .symbol(",") else {
                throw error("a condition has more than \(Self.maxPredicates) predicates")
            }
        } while accept(",")
        try expect("]")
        return .init(identifier: name, predicates: predicates)
    }

    private mutating func operand(known: Set<String>) throws(PolicySyntaxError) -> AttestationPolicy.Operand {
        switch current.kind {
        case .string(let text):
            index += 1
            return .literal(.string(text))
        case .number(let text):
            guard let number = Int(text) else { throw error("\(Self.shown(text)) is not an integer") }
            index += 1
            return .literal(.integer(number))
        case .identifier(let word):
            index += 1
            if word.lowercased() == "true" { return .literal(.bool(true)) }
            if word.lowercased() == "false" { return .literal(.bool(false)) }
            guard accept(".") else {
                index -= 1
                throw error("expected a string, number, true, false or a claim reference like c.value")
            }
            guard known.contains(word) else {
                index -= 2
                throw error("'\(Self.shown(word))' names no earlier condition of this rule")
            }
            let propertyName = try identifier("type, value or issuer")
            guard let property = AttestationPolicy.Property(rawValue: propertyName.lowercased()) else {
                index -= 1
                throw error("unknown claim property '\(Self.shown(propertyName))'")
            }
            return .reference(identifier: word, property: property)
        default:
            throw error("expected a value, found \(describe(current.kind))")
        }
    }

    private mutating func action(
        known: Set<String>,
        section: String
    ) throws(PolicySyntaxError) -> AttestationPolicy.Action {
        let name = try identifier("an action").lowercased()
        switch name {
        case "permit", "deny":
            guard section == "authorizationrules" else {
                index -= 1
                throw error("\(Self.shown(name))() belongs in authorizationrules")
            }
            try expect("(")
            try expect(")")
            return name == "permit" ? .permit : .deny
        case "issue", "add":
            if name == "issue", section != "issuancerules" {
                index -= 1
                throw error("issue() belongs in issuancerules")
            }
            try expect("(")
            let spec = try claimSpec(known: known)
            try expect(")")
            return name == "issue" ? .issue(spec) : .add(spec)
        default:
            index -= 1
            throw error("unknown action '\(Self.shown(name))' (permit, deny, issue or add)")
        }
    }

    private mutating func claimSpec(known: Set<String>) throws(PolicySyntaxError) -> AttestationPolicy.ClaimSpec {
        var type: AttestationPolicy.Operand?
        var value: AttestationPolicy.Operand?
        repeat {
            let key = try identifier("type, value or claim").lowercased()
            try expect("=")
            switch key {
            case "claim":
                let word = try identifier("a condition's identifier")
                guard known.contains(word) else {
                    index -= 1
                    throw error("'\(Self.shown(word))' names no condition of this rule")
                }
                return .matched(identifier: word)
            case "type": type = try operand(known: known)
            case "value": value = try operand(known: known)
            case "valuetype", "issuer": _ = try operand(known: known)
            default:
                index -= 2
                throw error("unknown claim field '\(Self.shown(key))' (type, value or claim)")
            }
        } while accept(",")
        guard let type, let value else { throw error("a claim needs type= and value=") }
        return .typed(type: type, value: value)
    }
}
