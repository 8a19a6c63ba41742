import AttestationService
import Testing

@Suite("MAA policy language")
struct PolicyTests {
    let claims = [
        PolicyClaim(type: "x-ms-sgx-is-debuggable", value: .bool(false)),
        PolicyClaim(type: "x-ms-sgx-mrsigner", value: .string("abcd")),
        PolicyClaim(type: "x-ms-sgx-svn", value: .integer(3)),
        PolicyClaim(type: "x-ms-sgx-product-id", value: .integer(7)),
    ]

    @Test func defaultPolicyPermitsEverything() throws {
        let decision = try AttestationPolicy(text: AttestationPolicy.defaultText).evaluate(claims)
        #expect(decision.permitted && decision.issued.isEmpty)
    }

    @Test func authorizationPermitsOnlyWhatMatches() throws {
        let policy = try AttestationPolicy(
            text: """
                version=1.0;
                authorizationrules
                {
                    c:[type=="x-ms-sgx-is-debuggable", value==false] && [type=="x-ms-sgx-svn", value>=2] => permit();
                };
                issuancerules
                {
                    c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value);
                    c:[type=="x-ms-sgx-svn"] => issue(claim=c);
                    => issue(type="constant", value=42);
                };
                """
        )
        let decision = policy.evaluate(claims)
        #expect(decision.permitted)
        #expect(decision.issued.map(\.type) == ["signer", "x-ms-sgx-svn", "constant"])
        #expect(decision.issued[0].value == .string("abcd"))
        #expect(decision.issued[2].value == .integer(42))

        var debuggable = claims
        debuggable[0].value = .bool(true)
        #expect(!policy.evaluate(debuggable).permitted)
        var old = claims
        old[2].value = .integer(1)
        #expect(!policy.evaluate(old).permitted)
    }

    @Test func denyWinsAndAddFeedsLaterRules() throws {
        let policy = try AttestationPolicy(
            text: """
                version=1.0;
                authorizationrules {
                    => permit();
                    c:[type=="x-ms-sgx-product-id", value!=7] => deny();
                };
                issuancerules {
                    c:[type=="x-ms-sgx-svn", value>2] => add(type="recent", value=true);
                    c:[type=="recent", value==true] => issue(type="fresh", value="yes");
                };
                """
        )
        let decision = policy.evaluate(claims)
        #expect(decision.permitted)
        #expect(decision.issued.map(\.type) == ["fresh"])
        var other = claims
        other[3].value = .integer(8)
        #expect(!policy.evaluate(other).permitted)
        #expect(policy.evaluate(other).reason?.contains("line 4") == true)
    }

    @Test func referencesBetweenConditions() throws {
        let policy = try AttestationPolicy(
            text: """
                version=1.0;
                authorizationrules {
                    c1:[type=="a"] && c2:[type=="b", value==c1.value] => permit();
                };
                """
        )
        let same = [PolicyClaim(type: "a", value: .string("x")), PolicyClaim(type: "b", value: .string("x"))]
        let different = [PolicyClaim(type: "a", value: .string("x")), PolicyClaim(type: "b", value: .string("y"))]
        #expect(policy.evaluate(same).permitted)
        #expect(!policy.evaluate(different).permitted)
    }

    /// Syntax errors name the line and column of the first mistake.
    @Test(arguments: [
        ("version=1.0;\nauthorizationrules {\n  => permit()\n  c:[type=\"x\"] => permitt();\n};", 4, 19),
        ("version=2.0;\nauthorizationrules { };", 1, 9),
        ("version=1.0;\nauthorizationrules {\n  c:[typo==\"x\"] => permit();\n};", 3, 6),
        ("version=1.0;\nauthorizationrules {\n  c:[type==\"x\" => permit();\n};", 3, 16),
        ("version=1.0;\nissuancerules { };", 2, 19),
        ("version=1.0;\nauthorizationrules {\n  => issue(type=\"a\", value=1);\n};", 3, 6),
        ("version=1.0;\nauthorizationrules {\n  [type==\"a\", value==\"unterminated] => permit();\n};", 3, 22),
        ("version=1.0;\nauthorizationrules {\n  [type==\"a\"] => permit(); # \n};", 3, 28),
        ("version=1.0;\nauthorizationrules {\n  [type==\"a\", value==c.value] => permit();\n};", 3, 22),
    ])
    func syntaxErrorsNameLineAndColumn(_ text: String, _ line: Int, _ column: Int) {
        let error = #expect(throws: PolicySyntaxError.self) { try AttestationPolicy(text: text) }
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.column == column, "\(String(describing: error))")
    }

    @Test func commentsAndMAASpellingsParse() throws {
        let policy = try AttestationPolicy(
            text: """
                version= 1.0;
                // a comment
                authorizationrules
                {
                    /* several
                       lines */
                    c:[type=="$is-debuggable", issuer=="AttestationService"] => permit();
                };
                issuancerules
                {
                    c:[type=="$sgx-mrsigner"] => issue(type="signer", value=c.value)
                };
                """
        )
        let decision = policy.evaluate([
            PolicyClaim(type: "$is-debuggable", value: .bool(false)),
            PolicyClaim(type: "$sgx-mrsigner", value: .string("ff")),
        ])
        #expect(decision.permitted && decision.issued.first?.value == .string("ff"))
    }
}
