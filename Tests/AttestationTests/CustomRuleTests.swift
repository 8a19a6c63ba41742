import Attestation
import Testing

/// A relying party's own requirement, written outside the Attestation module (this file imports it without
/// `@testable`), composed with the fail-closed defaults: the outcome lists every failure.
@Suite("Evidence policy: rules written by users")
struct CustomRuleTests {
    static let minimumSVN = EvidenceRequirement("security version") { claims in
        guard let svn = claims.sgx?.isvSVN else {
            return EvidencePolicy.Violation(requirement: "security version", reason: "not an SGX enclave")
        }
        guard svn >= 7 else {
            return EvidencePolicy.Violation(requirement: "security version", reason: "ISVSVN \(svn) is below 7")
        }
        return nil
    }

    @Test func aUserRuleRefusesAndComposesWithTheDefaults() async throws {
        let claims = try await EvidencePolicyTests.sgxClaims()
        let svn = try #require(claims.sgx?.isvSVN)
        #expect(svn < 7)  // the vector's enclave is below the bar
        var debug = claims
        debug.debug = true
        let rules = EvidencePolicyRules {
            EvidencePolicy.failClosed
            Self.minimumSVN
        }
        #expect(rules.violations(claims).map(\.requirement) == ["security version"])
        #expect(rules.violations(debug).map(\.requirement) == ["debug", "security version"])
        var upgraded = claims
        upgraded.sgx?.isvSVN = 7
        #expect(rules.violations(upgraded).isEmpty)
        let refusal = try #require(rules.violations(claims).first)
        #expect(refusal.setting == nil)
        #expect(refusal.description == "security version: ISVSVN \(svn) is below 7")
    }
}
