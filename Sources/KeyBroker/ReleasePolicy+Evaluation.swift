public import AttestationAPI

extension ReleasePolicy {
    /// Evaluates the policy against a verified token's claims.
    ///
    /// An authority block applies only when its authority equals the token's issuer (both normalized: scheme and
    /// host lowercased, default port and trailing slashes dropped). With a top-level `anyOf` the blocks that apply
    /// are tried in order; with `allOf` every block must apply and hold. A missing claim fails every operator except
    /// `exists: false`; a claim path that runs through a value that is not an object fails every operator. Values
    /// of different JSON types never match (the string `"2"` is not the number `2`), and NaN matches nothing.
    ///
    /// - Parameters:
    ///   - claims: The token's claims (already verified: signature, issuer trust, freshness).
    ///   - issuer: The token's `iss`.
    /// - Returns: ``ReleasePolicyDecision/allowed``, or a refusal naming the first failed condition.
    public func evaluate(claims: [String: TokenValue], issuer: String) -> ReleasePolicyDecision {
        evaluate(claims: claims, normalizedIssuer: Self.normalizeAuthority(issuer))
    }

    /// ``evaluate(claims:issuer:)`` with the issuer already normalized (`nil`: it does not normalize).
    func evaluate(claims: [String: TokenValue], normalizedIssuer: String?) -> ReleasePolicyDecision {
        var firstFailure: ReleasePolicyDecision.Failure?
        for block in authorities {
            guard let normalizedIssuer, block.normalizedAuthority == normalizedIssuer else {
                if combinator == .allOf {
                    return .refused(
                        .init(
                            path: block.path,
                            claim: nil,
                            operator: nil,
                            reason: "the token's issuer is not the block's authority"
                        )
                    )
                }
                continue
            }
            switch Self.evaluate(block.combinator, block.conditions, claims: claims) {
            case nil:
                if combinator == .anyOf { return .allowed }
            case let failure?:
                if combinator == .allOf { return .refused(failure) }
                if firstFailure == nil { firstFailure = failure }
            }
        }
        if combinator == .allOf { return .allowed }
        return .refused(
            firstFailure
                ?? .init(path: "$", claim: nil, operator: nil, reason: "no authority block names the token's issuer")
        )
    }

    /// `nil` when the list holds, else its first failure.
    static func evaluate(
        _ combinator: Combinator,
        _ conditions: [Condition],
        claims: [String: TokenValue]
    ) -> ReleasePolicyDecision.Failure? {
        var firstFailure: ReleasePolicyDecision.Failure?
        for condition in conditions {
            let failure: ReleasePolicyDecision.Failure?
            switch condition {
            case .claim(let claimCondition): failure = evaluate(claimCondition, claims: claims)
            case .list(let nested, let members, _): failure = evaluate(nested, members, claims: claims)
            }
            switch (combinator, failure) {
            case (.allOf, let failure?): return failure
            case (.anyOf, nil): return nil
            case (.anyOf, let failure?): if firstFailure == nil { firstFailure = failure }
            case (.allOf, nil): break
            }
        }
        return firstFailure
    }

    /// What a claim path leads to.
    enum Lookup {
        case value(TokenValue)
        case missing
        /// The path runs through a value that is not an object.
        case blocked
    }

    static func lookup(_ segments: [String], in claims: [String: TokenValue]) -> Lookup {
        var current = claims
        for (index, segment) in segments.enumerated() {
            guard let value = current[segment] else { return .missing }
            if index == segments.count - 1 { return .value(value) }
            guard case .object(let members) = value else { return .blocked }
            current = members
        }
        return .missing
    }

    static func evaluate(
        _ condition: ClaimCondition,
        claims: [String: TokenValue]
    ) -> ReleasePolicyDecision.Failure? {
        func failure(_ reason: String) -> ReleasePolicyDecision.Failure {
            .init(path: condition.path, claim: condition.claim, operator: condition.operator, reason: reason)
        }
        let claimValue: TokenValue
        switch lookup(condition.claimSegments, in: claims) {
        case .blocked:
            return failure("claim \"\(condition.claim)\" runs through a value that is not an object")
        case .missing:
            if condition.operator == .exists, condition.value == .bool(false) { return nil }
            return failure("claim \"\(condition.claim)\" is missing")
        case .value(let value):
            claimValue = value
        }
        let holds: Bool
        switch condition.operator {
        case .exists:
            holds = condition.value == .bool(true)
        case .equals:
            holds = Self.compare(claimValue, condition.value) == .orderedSame
        case .notEquals:
            let order = Self.compare(claimValue, condition.value)
            holds = order != nil && order != .orderedSame
        case .less, .lessOrEquals, .greater, .greaterOrEquals:
            guard Self.isNumber(claimValue), let order = Self.compare(claimValue, condition.value) else {
                holds = false
                break
            }
            switch condition.operator {
            case .less: holds = order == .orderedAscending
            case .lessOrEquals: holds = order != .orderedDescending
            case .greater: holds = order == .orderedDescending
            default: holds = order != .orderedAscending
            }
        }
        return holds ? nil : failure("claim \"\(condition.claim)\" fails \"\(condition.operator.rawValue)\"")
    }

    static func isNumber(_ value: TokenValue) -> Bool {
        switch value {
        case .integer, .double: true
        default: false
        }
    }

    /// How two values compare: numbers by value, strings and booleans for equality only (`orderedSame` or
    /// `orderedAscending` for "different"); `nil` for values of different types, NaN, and anything else.
    static func compare(_ left: TokenValue, _ right: TokenValue) -> Order? {
        switch (left, right) {
        case (.integer(let a), .integer(let b)):
            return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        case (.integer(let a), .double(let b)): return compare(a, b)
        case (.double(let a), .integer(let b)): return compare(b, a).map(\.reversed)
        case (.double(let a), .double(let b)):
            guard !a.isNaN, !b.isNaN else { return nil }
            return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        case (.string(let a), .string(let b)):
            // Key Vault compares strings case-sensitively; compare the exact scalars, not canonical equivalence.
            return a.unicodeScalars.elementsEqual(b.unicodeScalars) ? .orderedSame : .orderedAscending
        case (.bool(let a), .bool(let b)): return a == b ? .orderedSame : .orderedAscending
        default: return nil
        }
    }

    /// An `Int` against a `Double`, exactly (no rounding of large integers through `Double`).
    static func compare(_ integer: Int, _ double: Double) -> Order? {
        guard !double.isNaN else { return nil }
        if double >= 9_223_372_036_854_775_808.0 { return .orderedAscending }
        if double < -9_223_372_036_854_775_808.0 { return .orderedDescending }
        let whole = double.rounded(.towardZero)
        let wholeInteger = Int(whole)
        if integer != wholeInteger { return integer < wholeInteger ? .orderedAscending : .orderedDescending }
        let fraction = double - whole
        return fraction > 0 ? .orderedAscending : fraction < 0 ? .orderedDescending : .orderedSame
    }

    /// The order of two values.
    enum Order {
        case orderedAscending, orderedSame, orderedDescending

        var reversed: Order {
            switch self {
            case .orderedAscending: .orderedDescending
            case .orderedSame: .orderedSame
            case .orderedDescending: .orderedAscending
            }
        }
    }
}
