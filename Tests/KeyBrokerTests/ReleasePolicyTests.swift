import AttestationAPI
import Foundation
import KeyBroker
import Testing

@Suite("ReleasePolicy: Key Vault's release policy grammar")
struct ReleasePolicyTests {
    static let authority = "https://sharedeus.eus.attest.azure.net"
    static let mrsigner = "c0c9d7ce2d0b16c0a3b5e2f4a8c1f0e9d6b7a5c4e3f2a1b0c9d8e7f6a5b4c3d2"

    static let sgxPolicy = """
        {"version": "1.0.0",
         "anyOf": [{"authority": "https://sharedeus.eus.attest.azure.net/",
                    "allOf": [{"claim": "x-ms-sgx-mrsigner", "equals": "\(mrsigner)"},
                              {"claim": "x-ms-sgx-svn", "greaterOrEquals": 2},
                              {"claim": "x-ms-sgx-is-debuggable", "equals": false}]}]}
        """

    static let snpPolicy = """
        {"version": "1.0.0",
         "anyOf": [{"authority": "https://sharedweu.weu.attest.azure.net",
                    "allOf": [{"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"},
                              {"claim": "x-ms-isolation-tee.x-ms-compliance-status",
                               "equals": "azure-compliant-cvm"}]}]}
        """

    static let nestedPolicy = """
        {"version": "1.0",
         "allOf": [{"authority": "https://sharedeus.eus.attest.azure.net",
                    "anyOf": [{"allOf": [{"claim": "x-ms-sgx-mrsigner", "equals": "\(mrsigner)"},
                                         {"claim": "x-ms-sgx-svn", "greater": 4}]},
                              {"anyOf": [{"claim": "x-ms-sgx-mrenclave", "equals": "aa"},
                                         {"claim": "x-ms-sgx-mrenclave", "equals": "bb"}]}]}]}
        """

    static func sgxClaims(svn: Int = 3, signer: String = mrsigner) -> [String: TokenValue] {
        [
            "x-ms-sgx-mrsigner": .string(signer), "x-ms-sgx-svn": .integer(svn),
            "x-ms-sgx-is-debuggable": .bool(false),
            "x-ms-runtime": .object([
                "keys": .array([.object(["kty": .string("RSA")])]),
                "client-payload": .object(["nonce": .string("abc")]),
            ]),
        ]
    }

    static func policy(_ conditions: String, version: String = "1.0.0") throws -> ReleasePolicy {
        try ReleasePolicy(
            jsonText: """
                {"version": "\(version)", "anyOf": [{"authority": "\(authority)", "allOf": [\(conditions)]}]}
                """
        )
    }

    static func expectRefused(
        _ text: String,
        _ code: ReleasePolicyError.Code,
        at path: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try ReleasePolicy(jsonText: text)
            Issue.record("policy was accepted, expected \(code)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
        }
    }

    static func wrap(_ conditions: String) -> String {
        """
        {"version": "1.0.0", "anyOf": [{"authority": "\(authority)", "allOf": [\(conditions)]}]}
        """
    }

    // MARK: Sample policies

    @Test func sgxSamplePolicyAllowsTheRightEnclaveOnly() throws {
        let policy = try ReleasePolicy(jsonText: Self.sgxPolicy)
        #expect(policy.version == "1.0.0")
        #expect(policy.authorities.count == 1)
        #expect(policy.evaluate(claims: Self.sgxClaims(), issuer: Self.authority) == .allowed)
        // Issuer written with another case and a trailing slash is the same authority.
        #expect(policy.evaluate(claims: Self.sgxClaims(), issuer: "HTTPS://SharedEUS.eus.attest.azure.net/").isAllowed)

        let oldSVN = policy.evaluate(claims: Self.sgxClaims(svn: 1), issuer: Self.authority)
        let failure = try #require(oldSVN.failure)
        #expect(failure.path == "anyOf[0].allOf[1]")
        #expect(failure.claim == "x-ms-sgx-svn")
        #expect(failure.operator == .greaterOrEquals)

        let otherSigner = policy.evaluate(claims: Self.sgxClaims(signer: "00"), issuer: Self.authority)
        #expect(otherSigner.failure?.path == "anyOf[0].allOf[0]")
        #expect(otherSigner.failure?.operator == .equals)
    }

    @Test func sevSnpSamplePolicyWalksNestedClaims() throws {
        let policy = try ReleasePolicy(jsonText: Self.snpPolicy)
        let issuer = "https://sharedweu.weu.attest.azure.net"
        let good: [String: TokenValue] = [
            "x-ms-isolation-tee": .object([
                "x-ms-attestation-type": .string("sevsnpvm"),
                "x-ms-compliance-status": .string("azure-compliant-cvm"),
            ])
        ]
        #expect(policy.evaluate(claims: good, issuer: issuer) == .allowed)
        let tdx: [String: TokenValue] = [
            "x-ms-isolation-tee": .object([
                "x-ms-attestation-type": .string("tdxvm"),
                "x-ms-compliance-status": .string("azure-compliant-cvm"),
            ])
        ]
        #expect(
            policy.evaluate(claims: tdx, issuer: issuer).failure?.claim == "x-ms-isolation-tee.x-ms-attestation-type"
        )
        // A flat claim literally named with a dot is not the nested one.
        let flat: [String: TokenValue] = [
            "x-ms-isolation-tee.x-ms-attestation-type": .string("sevsnpvm"),
            "x-ms-isolation-tee.x-ms-compliance-status": .string("azure-compliant-cvm"),
        ]
        #expect(!policy.evaluate(claims: flat, issuer: issuer).isAllowed)
    }

    @Test func nestedAnyOfPolicy() throws {
        let policy = try ReleasePolicy(jsonText: Self.nestedPolicy)
        #expect(policy.evaluate(claims: Self.sgxClaims(svn: 5), issuer: Self.authority) == .allowed)
        var claims = Self.sgxClaims(svn: 4)
        let refused = policy.evaluate(claims: claims, issuer: Self.authority)
        // Both branches fail: the first failure of the first branch is reported.
        #expect(refused.failure?.path == "allOf[0].anyOf[0].allOf[1]")
        #expect(refused.failure?.operator == .greater)
        claims["x-ms-sgx-mrenclave"] = .string("bb")
        #expect(policy.evaluate(claims: claims, issuer: Self.authority) == .allowed)
        claims["x-ms-sgx-mrenclave"] = .string("BB")
        #expect(!policy.evaluate(claims: claims, issuer: Self.authority).isAllowed)
    }

    // MARK: Operators

    @Test(arguments: [
        ("equals", "3", true), ("equals", "4", false),
        ("notEquals", "4", true), ("notEquals", "3", false),
        ("less", "4", true), ("less", "3", false),
        ("lessOrEquals", "3", true), ("lessOrEquals", "2", false),
        ("greater", "2", true), ("greater", "3", false),
        ("greaterOrEquals", "3", true), ("greaterOrEquals", "3.5", false),
        ("greaterOrEquals", "2.5", true), ("less", "3.0000001", true),
        ("exists", "true", true), ("exists", "false", false),
    ])
    func numericOperators(op: String, value: String, holds: Bool) throws {
        let policy = try Self.policy(#"{"claim": "x-ms-sgx-svn", "\#(op)": \#(value)}"#)
        #expect(policy.evaluate(claims: Self.sgxClaims(svn: 3), issuer: Self.authority).isAllowed == holds)
    }

    @Test func stringAndBooleanEquality() throws {
        let claims: [String: TokenValue] = ["s": .string("Abc"), "b": .bool(true)]
        for (condition, holds) in [
            (#"{"claim": "s", "equals": "Abc"}"#, true), (#"{"claim": "s", "equals": "abc"}"#, false),
            (#"{"claim": "s", "notEquals": "abc"}"#, true), (#"{"claim": "s", "notEquals": "Abc"}"#, false),
            (#"{"claim": "b", "equals": true}"#, true), (#"{"claim": "b", "equals": false}"#, false),
            (#"{"claim": "b", "notEquals": false}"#, true), (#"{"claim": "b", "notEquals": true}"#, false),
        ] {
            let policy = try Self.policy(condition)
            #expect(policy.evaluate(claims: claims, issuer: Self.authority).isAllowed == holds, "\(condition)")
        }
    }

    @Test func missingClaimFailsEveryOperatorButExistsFalse() throws {
        for op in ReleasePolicy.Operator.allCases {
            let value = op == .exists ? "true" : "1"
            let policy = try Self.policy(#"{"claim": "absent", "\#(op.rawValue)": \#(value)}"#)
            let decision = policy.evaluate(claims: Self.sgxClaims(), issuer: Self.authority)
            #expect(decision.failure?.claim == "absent", "\(op)")
        }
        let absent = try Self.policy(#"{"claim": "absent", "exists": false}"#)
        #expect(absent.evaluate(claims: Self.sgxClaims(), issuer: Self.authority) == .allowed)
    }

    @Test func dottedPathsWalkNestedObjects() throws {
        let nonce = try Self.policy(#"{"claim": "x-ms-runtime.client-payload.nonce", "equals": "abc"}"#)
        #expect(nonce.evaluate(claims: Self.sgxClaims(), issuer: Self.authority) == .allowed)
        let keys = try Self.policy(#"{"claim": "x-ms-runtime.keys", "exists": true}"#)
        #expect(keys.evaluate(claims: Self.sgxClaims(), issuer: Self.authority) == .allowed)
        let deeper = try Self.policy(#"{"claim": "x-ms-runtime.client-payload.other", "exists": true}"#)
        #expect(!deeper.evaluate(claims: Self.sgxClaims(), issuer: Self.authority).isAllowed)
    }

    @Test func typeMismatchesNeverMatch() throws {
        let claims: [String: TokenValue] = ["n": .integer(2), "s": .string("2"), "b": .bool(true)]
        for condition in [
            #"{"claim": "n", "equals": "2"}"#, #"{"claim": "s", "equals": 2}"#, #"{"claim": "b", "equals": 1}"#,
            #"{"claim": "n", "equals": true}"#, #"{"claim": "n", "notEquals": "3"}"#,
            #"{"claim": "s", "notEquals": 3}"#, #"{"claim": "s", "greaterOrEquals": 1}"#,
            #"{"claim": "b", "greater": 0}"#, #"{"claim": "x-ms-runtime", "equals": 1}"#,
        ] {
            let policy = try Self.policy(condition)
            var all = claims
            all["x-ms-runtime"] = .object([:])
            #expect(!policy.evaluate(claims: all, issuer: Self.authority).isAllowed, "\(condition)")
        }
    }

    // MARK: Refused policies

    @Test func malformedPoliciesAreRefusedByCodeAndPath() {
        Self.expectRefused(
            Self.wrap(#"{"claim": "a", "equals": 1}, {"claim": "b", "equals": 1}, {"claim": "c", "equal": 1}"#),
            .unknownOperator,
            at: "anyOf[0].allOf[2]"
        )
        Self.expectRefused(
            Self.wrap(#"{"claim": "a", "equals": 1, "greater": 0}"#),
            .operatorCount,
            at: "anyOf[0].allOf[0]"
        )
        Self.expectRefused(Self.wrap(#"{"claim": "a"}"#), .operatorCount, at: "anyOf[0].allOf[0]")
        Self.expectRefused(Self.wrap(#"{"equals": 1}"#), .missingMember, at: "anyOf[0].allOf[0]")
        Self.expectRefused(
            Self.wrap(#"{"anyOf": [{"claim": "a", "exists": true}], "note": 1}"#),
            .unknownMember,
            at: "anyOf[0].allOf[0]"
        )
        Self.expectRefused(Self.wrap(#"{"allOf": []}"#), .emptyList, at: "anyOf[0].allOf[0].allOf")
        Self.expectRefused(Self.wrap(""), .emptyList, at: "anyOf[0].allOf")
        Self.expectRefused(Self.wrap(#"{"claim": "a", "less": "b"}"#), .invalidValue, at: "anyOf[0].allOf[0].less")
        Self.expectRefused(
            Self.wrap(#"{"claim": "a", "greater": true}"#),
            .invalidValue,
            at: "anyOf[0].allOf[0].greater"
        )
        Self.expectRefused(Self.wrap(#"{"claim": "a", "exists": 1}"#), .invalidValue, at: "anyOf[0].allOf[0].exists")
        Self.expectRefused(Self.wrap(#"{"claim": "a", "equals": null}"#), .invalidValue, at: "anyOf[0].allOf[0].equals")
        Self.expectRefused(Self.wrap(#"{"claim": "a", "equals": [1]}"#), .invalidValue, at: "anyOf[0].allOf[0].equals")
        Self.expectRefused(
            Self.wrap(#"{"claim": "a..b", "exists": true}"#),
            .invalidClaimPath,
            at: "anyOf[0].allOf[0].claim"
        )
        Self.expectRefused(Self.wrap(#"{"claim": 3, "exists": true}"#), .invalidValue, at: "anyOf[0].allOf[0].claim")
        Self.expectRefused(
            #"{"version": "2.0", "anyOf": [{"authority": "https://a.example", "allOf": [{"claim": "a", "exists": true}]}]}"#,
            .unsupportedVersion,
            at: "version"
        )
        Self.expectRefused(#"{"anyOf": []}"#, .missingMember, at: "$")
        Self.expectRefused(#"{"version": "1.0.0", "anyOf": [], "allOf": []}"#, .combinatorCount, at: "$")
        Self.expectRefused(#"{"version": "1.0.0", "anyOf": [], "extra": 1}"#, .unknownMember, at: "$")
        Self.expectRefused(#"{"version": "1.0.0", "anyOf": []}"#, .emptyList, at: "anyOf")
        Self.expectRefused(
            #"{"version": "1.0.0", "anyOf": [{"authority": "https://a.example", "allOf": [{"claim": "a", "exists": true}], "x": 1}]}"#,
            .unknownMember,
            at: "anyOf[0]"
        )
        Self.expectRefused(
            #"{"version": "1.0.0", "anyOf": [{"allOf": [{"claim": "a", "exists": true}]}]}"#,
            .missingMember,
            at: "anyOf[0]"
        )
        Self.expectRefused(
            #"{"version": "1.0.0", "anyOf": [{"authority": "ftp://a.example", "allOf": [{"claim": "a", "exists": true}]}]}"#,
            .invalidAuthority,
            at: "anyOf[0].authority"
        )
        Self.expectRefused("{\"version\": \"1.0.0\", ", .malformedJSON, at: "$")
        Self.expectRefused("[1]", .malformedJSON, at: "$")
    }

    @Test func duplicateMembersAreRefused() throws {
        // JSONDecoder keeps the first of two members, JSONSerialization the last: the policy must not mean two things.
        Self.expectRefused(
            Self.wrap(#"{"claim": "x-ms-sgx-svn", "greaterOrEquals": 2, "greaterOrEquals": 0}"#),
            .duplicateMember,
            at: "anyOf[0].allOf[0]"
        )
        Self.expectRefused(
            Self.wrap(#"{"claim": "x-ms-sgx-svn", "claim": "other", "exists": true}"#),
            .duplicateMember,
            at: "anyOf[0].allOf[0]"
        )
        Self.expectRefused(
            Self.wrap(#"{"claim": "a", "equals": 1, "equ\u0061ls": 2}"#),
            .duplicateMember,
            at: "anyOf[0].allOf[0]"
        )
        Self.expectRefused(
            #"{"version": "1.0.0", "version": "2", "anyOf": [{"authority": "https://a.example", "allOf": [{"claim": "a", "exists": true}]}]}"#,
            .duplicateMember,
            at: "$"
        )
        Self.expectRefused(
            #"{"version": "1.0.0", "anyOf": [{"authority": "https://a.example", "authority": "https://b.example", "allOf": [{"claim": "a", "exists": true}]}]}"#,
            .duplicateMember,
            at: "anyOf[0]"
        )
        // The same name in two different objects, and brackets, quotes and commas inside strings, are fine.
        let policy = try Self.policy(
            #"{"claim": "a", "equals": "x\"{[,\\"}, {"claim": "a", "notEquals": "y"}, {"anyOf": [{"claim": "a", "exists": true}]}"#
        )
        #expect(policy.evaluate(claims: ["a": .string(#"x"{[,\"#)], issuer: Self.authority) == .allowed)
    }

    @Test func everyPrefixOfAValidPolicyIsRefusedCleanly() {
        let bytes = Array(Self.sgxPolicy.utf8)
        for length in 0..<bytes.count {
            #expect(throws: ReleasePolicyError.self) { try ReleasePolicy(jsonBytes: Data(bytes[0..<length])) }
        }
    }

    @Test func limitsAreEnforced() {
        // Nesting: each nested list is one level; the authority block's list is level 2.
        func nested(_ levels: Int) -> String {
            var condition = #"{"claim": "a", "exists": true}"#
            for _ in 0..<levels { condition = #"{"anyOf": [\#(condition)]}"# }
            return Self.wrap(condition)
        }
        #expect(throws: Never.self) { try ReleasePolicy(jsonText: nested(ReleasePolicy.maximumDepth - 2)) }
        let deepPath = "anyOf[0].allOf" + String(repeating: "[0].anyOf", count: ReleasePolicy.maximumDepth - 1)
        Self.expectRefused(nested(ReleasePolicy.maximumDepth - 1), .tooDeep, at: deepPath)
        // A stack of brackets is refused before the decoder recurses into it.
        Self.expectRefused(
            String(repeating: "[", count: 50_000),
            .tooDeep,
            at: "$" + String(repeating: "[0]", count: 35)
        )

        let condition = #"{"claim":"a","exists":true}"#
        let many = Array(repeating: condition, count: ReleasePolicy.maximumConditionCount).joined(separator: ",")
        #expect(throws: Never.self) { try ReleasePolicy(jsonText: Self.wrap(many)) }
        Self.expectRefused(Self.wrap(many + "," + condition), .tooManyConditions, at: "anyOf[0].allOf[1024]")

        let padding = String(repeating: " ", count: ReleasePolicy.maximumSize)
        Self.expectRefused(Self.wrap(condition) + padding, .tooLarge, at: "$")
    }

    @Test func errorMessageNamesThePath() throws {
        let error = try #require(throws: ReleasePolicyError.self) {
            try ReleasePolicy(jsonText: Self.wrap(#"{"claim": "a", "exists": true}, {"claim": "c", "equal": 1}"#))
        }
        #expect(error.description == #"anyOf[0].allOf[1]: unknown operator "equal""#)
    }

    // MARK: Authorities

    @Test func authorityMismatchRefuses() throws {
        let policy = try ReleasePolicy(jsonText: Self.sgxPolicy)
        for issuer in [
            "https://evil.example", "https://sharedeus.eus.attest.azure.net.evil.example",
            "http://sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net/other", "not a url", "",
        ] {
            let decision = policy.evaluate(claims: Self.sgxClaims(), issuer: issuer)
            #expect(decision.failure?.path == "$", "\(issuer)")
        }
    }

    @Test func topLevelAllOfNeedsEveryAuthority() throws {
        // Across two authorities such a policy is refused when parsed (ReleasePolicyAuthorityTests); over one
        // authority every block must hold, and a token of another issuer meets none.
        let text = """
            {"version": "1.0.0",
             "allOf": [{"authority": "https://a.example", "allOf": [{"claim": "x", "exists": true}]},
                       {"authority": "https://a.example", "allOf": [{"claim": "y", "exists": true}]}]}
            """
        let policy = try ReleasePolicy(jsonText: text)
        let decision = policy.evaluate(claims: ["x": .integer(1)], issuer: "https://a.example")
        #expect(decision.failure?.path == "allOf[1].allOf[0]")
        #expect(policy.evaluate(claims: ["x": .integer(1)], issuer: "https://b.example").failure?.path == "allOf[0]")
    }

    // MARK: Attacks

    @Test func stringTwoDoesNotMatchNumberTwo() throws {
        let policy = try Self.policy(#"{"claim": "x-ms-sgx-svn", "equals": "2"}"#)
        #expect(!policy.evaluate(claims: Self.sgxClaims(svn: 2), issuer: Self.authority).isAllowed)
        let numeric = try Self.policy(#"{"claim": "x-ms-sgx-svn", "equals": 2}"#)
        #expect(!numeric.evaluate(claims: ["x-ms-sgx-svn": .string("2")], issuer: Self.authority).isAllowed)
    }

    @Test func existsFalseWithTheClaimPresentRefuses() throws {
        let policy = try Self.policy(#"{"claim": "x-ms-sgx-is-debuggable", "exists": false}"#)
        let decision = policy.evaluate(claims: Self.sgxClaims(), issuer: Self.authority)
        #expect(decision.failure?.operator == .exists)
    }

    @Test func claimPathThroughANonObjectFailsClosed() throws {
        for op in ["exists\": false", "exists\": true", "notEquals\": 1", "less\": 100"] {
            let policy = try Self.policy(#"{"claim": "x-ms-sgx-svn.inner", "\#(op)}"#)
            let decision = policy.evaluate(claims: Self.sgxClaims(), issuer: Self.authority)
            #expect(decision.failure?.claim == "x-ms-sgx-svn.inner", "\(op)")
        }
        let throughArray = try Self.policy(#"{"claim": "x-ms-runtime.keys.kty", "exists": false}"#)
        #expect(!throughArray.evaluate(claims: Self.sgxClaims(), issuer: Self.authority).isAllowed)
    }

    @Test func nanAndHugeNumbersDoNotCrash() throws {
        for condition in [
            #"{"claim": "n", "greater": 0}"#, #"{"claim": "n", "less": 0}"#, #"{"claim": "n", "equals": 0}"#,
            #"{"claim": "n", "notEquals": 0}"#, #"{"claim": "n", "greaterOrEquals": 1e300}"#,
        ] {
            let policy = try Self.policy(condition)
            #expect(!policy.evaluate(claims: ["n": .double(.nan)], issuer: Self.authority).isAllowed, "\(condition)")
        }
        let huge = try Self.policy(#"{"claim": "n", "less": 1e300}"#)
        #expect(huge.evaluate(claims: ["n": .integer(.max)], issuer: Self.authority).isAllowed)
        #expect(!huge.evaluate(claims: ["n": .double(.infinity)], issuer: Self.authority).isAllowed)
        let big = try Self.policy(#"{"claim": "n", "greaterOrEquals": 9223372036854775807}"#)
        #expect(big.evaluate(claims: ["n": .integer(.max)], issuer: Self.authority).isAllowed)
        #expect(!big.evaluate(claims: ["n": .integer(.max - 1)], issuer: Self.authority).isAllowed)
        // Out of range for a Double: refused as malformed, not a crash or an infinity.
        Self.expectRefused(Self.wrap(#"{"claim": "n", "less": 1e400}"#), .malformedJSON, at: "$")
    }
}
