import AttestationAPI
import Foundation
import KeyBroker
import Testing

/// ReleasePolicy's open decision: a top-level `allOf` across different authorities needs one token issued by
/// several authorities at once, which can't exist; such a policy would lock the key forever while looking valid.
@Suite("ReleasePolicy: top-level allOf across authorities")
struct ReleasePolicyAuthorityTests {
    @Test func allOfAcrossDifferentAuthoritiesIsRefusedAtParseTime() {
        let text = """
            {"version": "1.0.0",
             "allOf": [{"authority": "https://a.example", "allOf": [{"claim": "x", "equals": 1}]},
                       {"authority": "https://b.example", "allOf": [{"claim": "y", "equals": 2}]}]}
            """
        do {
            _ = try ReleasePolicy(jsonText: text)
            Issue.record("a top-level allOf over two authorities was accepted")
        } catch {
            #expect(error.code == .unsatisfiableAuthorities, "\(error)")
            #expect(error.path == "allOf[1].authority", "\(error)")
        }
    }

    @Test func allOfOverOneAuthorityStillParsesAndEvaluates() throws {
        // The same authority spelled two ways (trailing slash, case) is one authority.
        let policy = try ReleasePolicy(
            jsonText: """
                {"version": "1.0.0",
                 "allOf": [{"authority": "https://A.example/", "allOf": [{"claim": "x", "equals": 1}]},
                           {"authority": "https://a.example", "anyOf": [{"claim": "y", "equals": 2}]}]}
                """
        )
        #expect(policy.evaluate(claims: ["x": .integer(1), "y": .integer(2)], issuer: "https://a.example") == .allowed)
        #expect(
            policy.evaluate(claims: ["x": .integer(1), "y": .integer(3)], issuer: "https://a.example").failure?.path
                == "allOf[1].anyOf[0]"
        )
    }
}
