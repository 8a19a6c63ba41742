/// A rule from a closure: `nil` when the claims meet it.
public struct EvidenceRequirement: EvidencePolicyRule {
    /// The requirement's name (the ``EvidencePolicy/Violation/requirement`` of its refusals).
    public var name: String
    private let check: @Sendable (Claims) -> EvidencePolicy.Violation?

    /// A rule named `name` that `check` decides.
    ///
    /// - Parameters:
    ///   - name: The requirement's name, as refusals report it.
    ///   - check: Returns `nil` when the claims meet the requirement, otherwise the violation to report. It sees only
    ///     verified claims.
    public init(_ name: String, _ check: @escaping @Sendable (Claims) -> EvidencePolicy.Violation?) {
        self.name = name
        self.check = check
    }

    public func evaluate(_ claims: Claims) -> EvidencePolicyResult {
        check(claims).map { .failsToMeetPolicy($0) } ?? .meetsPolicy
    }
}
