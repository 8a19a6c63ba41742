import AttestationAPI

extension ReleasePolicy {
    /// Walks the decoded JSON tree, checking the grammar and counting conditions.
    struct Parser {
        var conditionCount = 0

        mutating func parseRoot(
            _ root: TokenValue
        ) throws(ReleasePolicyError) -> (String, Combinator, [AuthorityBlock]) {
            guard case .object(let members) = root else {
                throw ReleasePolicyError(.malformedJSON, at: "$", "policy is not a JSON object")
            }
            try Self.refuseUnknown(members, allowed: ["version", "anyOf", "allOf"], at: "$")
            guard let versionValue = members["version"] else {
                throw ReleasePolicyError(.missingMember, at: "$", "missing \"version\"")
            }
            guard case .string(let version) = versionValue else {
                throw ReleasePolicyError(.invalidValue, at: "version", "\"version\" is not a string")
            }
            guard version == "1.0.0" || version == "1.0" else {
                throw ReleasePolicyError(
                    .unsupportedVersion,
                    at: "version",
                    "unsupported version \(Self.quoted(version))"
                )
            }
            let (combinator, list) = try Self.combinator(of: members, at: "$", prefix: "")
            var blocks: [AuthorityBlock] = []
            for (index, element) in list.enumerated() {
                let block = try parseAuthorityBlock(element, at: "\(combinator.rawValue)[\(index)]")
                // One token has one issuer: a top-level allOf over two authorities can never hold.
                if combinator == .allOf, let first = blocks.first,
                    first.normalizedAuthority != block.normalizedAuthority
                {
                    throw ReleasePolicyError(
                        .unsatisfiableAuthorities,
                        at: "\(block.path).authority",
                        "a top-level \"allOf\" names more than one authority; no token has two issuers (use \"anyOf\")"
                    )
                }
                blocks.append(block)
            }
            return (version, combinator, blocks)
        }

        mutating func parseAuthorityBlock(
            _ value: TokenValue,
            at path: String
        ) throws(ReleasePolicyError)
            -> AuthorityBlock
        {
            guard case .object(let members) = value else {
                throw ReleasePolicyError(.invalidValue, at: path, "authority block is not an object")
            }
            try Self.refuseUnknown(members, allowed: ["authority", "anyOf", "allOf"], at: path)
            guard let authorityValue = members["authority"] else {
                throw ReleasePolicyError(.missingMember, at: path, "missing \"authority\"")
            }
            guard case .string(let authority) = authorityValue, let normalized = normalizeAuthority(authority) else {
                throw ReleasePolicyError(
                    .invalidAuthority,
                    at: "\(path).authority",
                    "\"authority\" is not an https or http URL"
                )
            }
            let (combinator, list) = try Self.combinator(of: members, at: path, prefix: "\(path).")
            let listPath = "\(path).\(combinator.rawValue)"
            let conditions = try parseList(list, at: listPath, depth: 2)
            return AuthorityBlock(
                path: path,
                authority: authority,
                normalizedAuthority: normalized,
                combinator: combinator,
                conditions: conditions
            )
        }

        mutating func parseList(
            _ list: [TokenValue],
            at path: String,
            depth: Int
        ) throws(ReleasePolicyError)
            -> [Condition]
        {
            guard depth <= ReleasePolicy.maximumDepth else {
                throw ReleasePolicyError(
                    .tooDeep,
                    at: path,
                    "lists nest deeper than \(ReleasePolicy.maximumDepth) levels"
                )
            }
            var conditions: [Condition] = []
            for (index, element) in list.enumerated() {
                conditions.append(try parseCondition(element, at: "\(path)[\(index)]", depth: depth))
            }
            return conditions
        }

        mutating func parseCondition(
            _ value: TokenValue,
            at path: String,
            depth: Int
        ) throws(ReleasePolicyError)
            -> Condition
        {
            conditionCount += 1
            guard conditionCount <= ReleasePolicy.maximumConditionCount else {
                throw ReleasePolicyError(
                    .tooManyConditions,
                    at: path,
                    "more than \(ReleasePolicy.maximumConditionCount) conditions"
                )
            }
            guard case .object(let members) = value else {
                throw ReleasePolicyError(.invalidValue, at: path, "condition is not an object")
            }
            guard let claimValue = members["claim"] else {
                if members.keys.contains(where: { Operator(rawValue: $0) != nil }) {
                    throw ReleasePolicyError(.missingMember, at: path, "missing \"claim\"")
                }
                try Self.refuseUnknown(members, allowed: ["anyOf", "allOf"], at: path)
                let (combinator, list) = try Self.combinator(of: members, at: path, prefix: "\(path).")
                let listPath = "\(path).\(combinator.rawValue)"
                return .list(combinator, try parseList(list, at: listPath, depth: depth + 1), path: listPath)
            }
            guard case .string(let claim) = claimValue else {
                throw ReleasePolicyError(.invalidValue, at: "\(path).claim", "\"claim\" is not a string")
            }
            let segments = claim.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard segments.allSatisfy({ !$0.isEmpty }) else {
                throw ReleasePolicyError(
                    .invalidClaimPath,
                    at: "\(path).claim",
                    "claim path \(Self.quoted(claim)) has an empty segment"
                )
            }
            var found: [(Operator, TokenValue)] = []
            for key in members.keys.sorted() where key != "claim" {
                guard let op = Operator(rawValue: key) else {
                    throw ReleasePolicyError(.unknownOperator, at: path, "unknown operator \(Self.quoted(key))")
                }
                found.append((op, members[key] ?? .null))
            }
            guard found.count == 1, let (op, operand) = found.first else {
                throw ReleasePolicyError(
                    .operatorCount,
                    at: path,
                    "a claim condition needs exactly one operator, it has \(found.count)"
                )
            }
            try Self.checkOperand(operand, of: op, at: "\(path).\(op.rawValue)")
            return .claim(
                ClaimCondition(path: path, claim: claim, claimSegments: segments, operator: op, value: operand)
            )
        }

        static func checkOperand(_ operand: TokenValue, of op: Operator, at path: String) throws(ReleasePolicyError) {
            switch (op, operand) {
            case (.exists, .bool): return
            case (.exists, _):
                throw ReleasePolicyError(.invalidValue, at: path, "\"exists\" takes true or false")
            case (_, .integer): return
            case (_, .double(let number)) where number.isFinite: return
            case (.equals, .string), (.notEquals, .string), (.equals, .bool), (.notEquals, .bool): return
            case (_, .string), (_, .bool):
                throw ReleasePolicyError(
                    .invalidValue,
                    at: path,
                    "\(Self.quoted(op.rawValue)) orders numbers only"
                )
            default:
                throw ReleasePolicyError(
                    .invalidValue,
                    at: path,
                    "\(Self.quoted(op.rawValue)) takes a string, a number or a boolean"
                )
            }
        }

        /// The one `anyOf`/`allOf` member of an object, which must be a non-empty list.
        static func combinator(
            of members: [String: TokenValue],
            at path: String,
            prefix: String
        ) throws(ReleasePolicyError) -> (Combinator, [TokenValue]) {
            let present = [Combinator.anyOf, .allOf].filter { members[$0.rawValue] != nil }
            guard present.count == 1, let combinator = present.first else {
                throw ReleasePolicyError(
                    .combinatorCount,
                    at: path,
                    "needs exactly one of \"anyOf\" and \"allOf\", has \(present.count)"
                )
            }
            let listPath = prefix + combinator.rawValue
            guard case .array(let list) = members[combinator.rawValue] else {
                throw ReleasePolicyError(
                    .invalidValue,
                    at: listPath,
                    "\(Self.quoted(combinator.rawValue)) is not a list"
                )
            }
            guard !list.isEmpty else {
                throw ReleasePolicyError(.emptyList, at: listPath, "\(Self.quoted(combinator.rawValue)) is empty")
            }
            return (combinator, list)
        }

        static func refuseUnknown(
            _ members: [String: TokenValue],
            allowed: Set<String>,
            at path: String
        ) throws(ReleasePolicyError) {
            if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw ReleasePolicyError(.unknownMember, at: path, "unknown member \(quoted(unknown))")
            }
        }

        /// A name from the policy, quoted and shortened so that a message stays readable.
        static func quoted(_ text: String) -> String {
            let limit = 64
            let shown = text.count > limit ? String(text.prefix(limit)) + "…" : text
            return "\"\(shown)\""
        }
    }
}
