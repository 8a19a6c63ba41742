import AttestationClient
import AttestationService
import Foundation
import TestSupport
import Testing

/// `enclave serve attestation`'s draft policy settings, which existed only in code (review 5): the most draft
/// evaluations at once, the longest draft, the time one evaluation may take. Bad values are usage errors naming the
/// range; good ones reach the service, as its answers show.
@Suite("enclave serve attestation: draft policy options")
struct ServeDraftOptionsTests {
    /// Out of range, not a number, NaN: exit 64 naming the option's range, before anything starts.
    @Test func badValuesAreRefusedByName() throws {
        let directory = try Fixtures.temporaryDirectory("draft-options")
        let cases: [([String], String)] = [
            (["--max-concurrent-draft-evaluations=-1"], "--max-concurrent-draft-evaluations is 0 to 64"),
            (["--max-concurrent-draft-evaluations", "65"], "--max-concurrent-draft-evaluations is 0 to 64"),
            (["--max-draft-policy-length", "0"], "--max-draft-policy-length is 1 to 262144 bytes"),
            (["--max-draft-policy-length", "262145"], "--max-draft-policy-length is 1 to 262144 bytes"),
            (["--policy-evaluation-timeout", "0"], "--policy-evaluation-timeout is 0.001 to 600 seconds"),
            (["--policy-evaluation-timeout", "nan"], "--policy-evaluation-timeout is 0.001 to 600 seconds"),
            (["--policy-evaluation-timeout", "601"], "--policy-evaluation-timeout is 0.001 to 600 seconds"),
            (["--policy-evaluation-timeout", "soon"], "--policy-evaluation-timeout"),
        ]
        for (arguments, message) in cases {
            let run = try ChildProcess.run(
                ChildProcess.cli,
                ["serve", "attestation", "--insecure-http", "--port", "0", "--data-dir", directory + "/never"]
                    + arguments
            )
            #expect(run.status == 64, "\(arguments): \(run.output)")
            #expect(run.output.contains(message), "\(arguments): \(run.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/never"))
    }

    /// `light` conditions every claim meets, then one of `predicates` predicates that no claim meets, then a rule
    /// that permits: claims^(light+1) × predicates steps, well under the step budget for the service's claims but
    /// far over a millisecond of evaluation.
    static func slow(light: Int, predicates: Int) -> String {
        let lights = (0..<light).map { "c\($0):[type!=\"q\"]" }
        let many = Array(repeating: "type!=\"q\"", count: predicates - 1) + ["type==\"never\""]
        let rule = (lights + ["[" + many.joined(separator: ", ") + "]"]).joined(separator: " && ")
        return "version=1.0; authorizationrules { \(rule) => permit(); => permit(); };"
    }

    /// No draft at all with `--max-concurrent-draft-evaluations 0` (429); a draft over `--max-draft-policy-length`
    /// refused naming that length; a draft stopped at `--policy-evaluation-timeout 0.001` that the same service
    /// code permits with time to spare (so its steps are within the budget: the time stopped it).
    @Test func theOptionsReachTheService() async throws {
        let patient: (inout AttestationServiceCore.Configuration) -> Void = { $0.policyEvaluationTimeout = 600 }
        try await ServiceFixture.with(configure: patient) { fixture in
            let environment = ["ENCLAVEKIT_PLATFORM_DIR": fixture.directory + "/platform"]
            let evidence = try fixture.evidence(binding: [])
            let permitting = "version=1.0; authorizationrules { => permit(); };"

            let closed = try ServedProcess(
                [
                    "--data-dir", fixture.directory + "/closed", "--insecure-http", "--allow-simulated",
                    "--max-concurrent-draft-evaluations", "0",
                ],
                environment: environment
            )
            let closedClient = AttestationClient(endpoint: try #require(URL(string: closed.base)))
            let none = await #expect(throws: AttestationClient.Failure.self) {
                _ = try await closedClient.attest(type: "SimulatedEnclave", evidence: evidence, draftPolicy: permitting)
            }
            #expect(none?.status == 429, "\(String(describing: none))")
            #expect(none?.code == "TooManyDraftPolicyEvaluations", "\(String(describing: none))")
            // The stored policy is not a draft: attestation goes on.
            _ = try await closedClient.attest(type: "SimulatedEnclave", evidence: evidence)

            let limited = try ServedProcess(
                [
                    "--data-dir", fixture.directory + "/limited", "--insecure-http", "--allow-simulated",
                    "--max-draft-policy-length", "2000", "--policy-evaluation-timeout", "0.001",
                ],
                environment: environment
            )
            let limitedClient = AttestationClient(endpoint: try #require(URL(string: limited.base)))
            let long = permitting + String(repeating: " ", count: 2001 - permitting.utf8.count)
            let tooLong = await #expect(throws: AttestationClient.Failure.self) {
                _ = try await limitedClient.attest(type: "SimulatedEnclave", evidence: evidence, draftPolicy: long)
            }
            #expect(tooLong?.code == "DraftPolicyTooLarge", "\(String(describing: tooLong))")
            #expect(tooLong?.message.contains("longer than 2000 bytes") == true, "\(String(describing: tooLong))")
            _ = try await limitedClient.attest(type: "SimulatedEnclave", evidence: evidence, draftPolicy: permitting)

            let slow = Self.slow(light: 2, predicates: 40)
            #expect(slow.utf8.count <= 2000)
            // In process, with 600 s to run, the same draft is permitted: its steps fit the budget.
            _ = try await fixture.core.attest(
                type: .simulatedEnclave,
                request: .init(evidence: evidence, draftPolicy: slow)
            )
            let stopped = await #expect(throws: AttestationClient.Failure.self) {
                _ = try await limitedClient.attest(type: "SimulatedEnclave", evidence: evidence, draftPolicy: slow)
            }
            #expect(stopped?.code == "PolicyEvaluationLimitExceeded", "\(String(describing: stopped))")
        }
    }
}
