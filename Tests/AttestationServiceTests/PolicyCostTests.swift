import Foundation
import Testing

@testable import AttestationService

/// An anonymous draft policy must not buy unbounded CPU: every predicate tested and every long string compared is
/// paid for out of the evaluation's step budget, rules and conditions are capped at parse time, drafts are evaluated
/// a few at a time and every evaluation stops after its time (finding A of the session 21 review).
@Suite("Attestation service: what a policy evaluation costs")
struct PolicyCostTests {
    /// Twenty claims of the service, as evidence gives (types distinct, none named `q` or `never`).
    static let claims = (0..<20).map { PolicyClaim(type: "claim-\($0)", value: .integer($0)) }

    /// `light` conditions every claim meets, then one with `predicates - 1` predicates every claim meets and a last
    /// one none does: the search tries claims^(light+1) claims, each against every predicate; then a rule that
    /// permits.
    static func heavy(light: Int, predicates: Int) -> String {
        let lights = (0..<light).map { "c\($0):[type!=\"q\"]" }
        let many = Array(repeating: "type!=\"q\"", count: predicates - 1) + ["type==\"never\""]
        let rule = (lights + ["[" + many.joined(separator: ", ") + "]"]).joined(separator: " && ")
        return "version=1.0; authorizationrules { \(rule) => permit(); => permit(); };"
    }

    /// Two light conditions and 64 predicates over 20 claims: 8,420 claims tried, but 512,000 predicates tested.
    /// Counting claims only, it fits a 100,000-step budget and is permitted; counting predicates, it does not.
    @Test func predicatesCountAgainstTheBudget() throws {
        let policy = try AttestationPolicy(text: Self.heavy(light: 2, predicates: 64))
        let decision = policy.evaluate(Self.claims, maxSteps: 100_000)
        #expect(decision.limitExceeded, "\(decision.reason ?? "permitted")")
        #expect(!decision.permitted)
        #expect(decision.reason?.contains("evaluation limit") == true, "\(decision.reason ?? "")")
    }

    /// The reviewer's attack at the parser's caps and the default budget: three light conditions and 64 predicates
    /// over 20 claims test 10 million predicates (about ten seconds of a core); it is refused at the budget.
    @Test func theReviewersAttackStopsAtTheDefaultBudget() throws {
        let policy = try AttestationPolicy(text: Self.heavy(light: 3, predicates: 64))
        let decision = policy.evaluate(Self.claims)
        #expect(decision.limitExceeded, "\(decision.reason ?? "permitted")")
        #expect(!decision.permitted)
    }

    /// Comparing long strings is paid for by length: 400 comparisons of a 60,000-byte literal with 60,000-byte
    /// claim values cost 234 steps each, over a 10,000-step budget (counted as 400 steps, it would be permitted).
    @Test func longStringComparisonsCountAgainstTheBudget() throws {
        let long = String(repeating: "a", count: 60_000)
        let policy = try AttestationPolicy(
            text: "version=1.0; authorizationrules { c:[type!=\"q\"] && [value==\"\(long)b\"] => permit(); "
                + "=> permit(); };"
        )
        let claims = (0..<20).map { PolicyClaim(type: "long-\($0)", value: .string(long + "c")) }
        let decision = policy.evaluate(claims, maxSteps: 10_000)
        #expect(decision.limitExceeded, "\(decision.reason ?? "permitted")")
        #expect(!decision.permitted)
    }

    /// At most 64 predicates in a condition: 65 are refused by name at parse time (the reviewer's 20,000 too), 64
    /// parse.
    @Test func aConditionHoldsAtMost64Predicates() throws {
        #expect(throws: Never.self) { try AttestationPolicy(text: Self.heavy(light: 0, predicates: 64)) }
        for count in [65, 20_000] {
            let refused = #expect(throws: PolicySyntaxError.self) {
                try AttestationPolicy(text: Self.heavy(light: 2, predicates: count))
            }
            #expect(refused?.message.contains("more than 64 predicates") == true, "\(String(describing: refused))")
        }
    }

    /// At most 16 conditions in a rule: 17 are refused by name at parse time, 16 parse.
    @Test func aRuleJoinsAtMost16Conditions() throws {
        #expect(throws: Never.self) { try AttestationPolicy(text: Self.heavy(light: 15, predicates: 2)) }
        let refused = #expect(throws: PolicySyntaxError.self) {
            try AttestationPolicy(text: Self.heavy(light: 16, predicates: 2))
        }
        #expect(refused?.message.contains("more than 16 conditions") == true, "\(String(describing: refused))")
    }

    /// Steps count every predicate tested: `[type=="a", value==1]` over a claim of another type (one predicate
    /// tested) then the matching claim (two) takes exactly three steps.
    @Test func stepsArePredicatesTested() throws {
        let policy = try AttestationPolicy(
            text: "version=1.0; authorizationrules { [type==\"a\", value==1] => permit(); };"
        )
        let decision = policy.evaluate([
            PolicyClaim(type: "x", value: .integer(0)), PolicyClaim(type: "a", value: .integer(1)),
        ])
        #expect(decision.permitted)
        #expect(decision.steps == 3)
        // And the attack is cut off at its budget, not after it ran on.
        let attack = try AttestationPolicy(text: Self.heavy(light: 2, predicates: 64)).evaluate(
            Self.claims,
            maxSteps: 100_000
        )
        #expect(attack.limitExceeded)
        #expect(attack.steps > 100_000 && attack.steps <= 100_000 + 256, "\(attack.steps)")
    }

    /// The draft limiter admits at most its limit at once and refuses the next by returning false (never waits);
    /// a released slot is taken again; a limit of 0 admits nothing.
    @Test func theDraftLimiterAdmitsAtMostItsLimit() {
        let limiter = DraftEvaluationLimiter(limit: 2)
        #expect(limiter.acquire())
        #expect(limiter.acquire())
        #expect(!limiter.acquire())
        #expect(limiter.inUse == 2)
        limiter.release()
        #expect(limiter.inUse == 1)
        #expect(limiter.acquire())
        #expect(!limiter.acquire())
        limiter.release()
        limiter.release()
        #expect(limiter.inUse == 0)
        #expect(!DraftEvaluationLimiter(limit: 0).acquire())
        #expect(AttestationServiceCore.Configuration(issuer: "x").maxConcurrentDraftEvaluations == 1)
    }

    /// While the service's draft slot is taken (a draft being evaluated), another draft is refused at once with
    /// 429 `TooManyDraftPolicyEvaluations`, and attestation under the stored policy goes on; once the slot is free,
    /// the draft is evaluated.
    @Test func draftsBeyondTheLimitAreRefusedAndAttestationGoesOn() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("drafts".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            let draft = AttestationServiceCore.AttestRequest(
                evidence: evidence,
                runtimeData: (runtime, false),
                draftPolicy: AttestationPolicy.defaultText
            )
            let stored = AttestationServiceCore.AttestRequest(evidence: evidence, runtimeData: (runtime, false))
            #expect(fixture.core.draftEvaluations.acquire())
            let refused = await #expect(throws: ServiceError.self) {
                try await fixture.core.attest(type: .simulatedEnclave, request: draft)
            }
            #expect(refused?.code == "TooManyDraftPolicyEvaluations", "\(String(describing: refused))")
            #expect(refused?.statusCode == 429)
            let token = try await fixture.core.attest(type: .simulatedEnclave, request: stored)
            #expect(token.split(separator: ".", omittingEmptySubsequences: false).count == 3)
            #expect(!token.hasSuffix("."))
            fixture.core.draftEvaluations.release()
            let unsigned = try await fixture.core.attest(type: .simulatedEnclave, request: draft)
            #expect(unsigned.hasSuffix("."))
            #expect(fixture.core.draftEvaluations.inUse == 0)
        }
    }

    /// A draft longer than 64 KiB is refused by name before it is parsed.
    @Test func aDraftOver64KiBIsRefused() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("long draft".utf8)
            let padding = String(repeating: " ", count: 64 << 10)
            let request = AttestationServiceCore.AttestRequest(
                evidence: try fixture.evidence(binding: runtime),
                runtimeData: (runtime, false),
                draftPolicy: AttestationPolicy.defaultText + padding
            )
            let refused = await #expect(throws: ServiceError.self) {
                try await fixture.core.attest(type: .simulatedEnclave, request: request)
            }
            #expect(refused?.code == "DraftPolicyTooLarge", "\(String(describing: refused))")
        }
    }

    /// An evaluation past its time is stopped with `PolicyEvaluationLimitExceeded` whatever steps it has left: with
    /// no time at all, a draft that needs some 16,000 steps is stopped at the first look at the clock (4,096 steps).
    @Test func anEvaluationPastItsTimeIsStopped() async throws {
        let policy = try AttestationPolicy(text: Self.heavy(light: 2, predicates: 2))
        let decision = await AttestationServiceCore.evaluate(policy, Self.claims, timeout: 0)
        #expect(decision.limitExceeded)
        #expect(decision.steps <= 4096, "\(decision.steps)")
        let unhurried = await AttestationServiceCore.evaluate(policy, Self.claims, timeout: 60)
        #expect(unhurried.permitted)
        let noTime: (inout AttestationServiceCore.Configuration) -> Void = { $0.policyEvaluationTimeout = 0 }
        try await ServiceFixture.with(configure: noTime) { fixture in
            let runtime = Array("timeout".utf8)
            let request = AttestationServiceCore.AttestRequest(
                evidence: try fixture.evidence(binding: runtime),
                runtimeData: (runtime, false),
                draftPolicy: Self.heavy(light: 3, predicates: 2)
            )
            let refused = await #expect(throws: ServiceError.self) {
                try await fixture.core.attest(type: .simulatedEnclave, request: request)
            }
            #expect(refused?.code == "PolicyEvaluationLimitExceeded", "\(String(describing: refused))")
        }
    }
}
