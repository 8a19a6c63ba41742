import Attestation
import AttestationService
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

/// A policy stored before the parser's limits (16 conditions a rule, 64 predicates a condition) that exceeds them no
/// longer parses. Every attestation of its type failed with 400 `InvalidPolicy`, blaming the client; now the service
/// says so when it starts (an error naming the type) and answers 500 `StoredPolicyInvalid` telling the operator what
/// to do, until a new policy is set or the policy is reset (review 5).
@Suite("Attestation service: stored policies over the parser's limits")
struct StoredPolicyLimitsTests {
    /// Every log line, with its level and metadata.
    final class CapturedLog: Sendable {
        let lines = Mutex<[String]>([])

        var all: [String] { lines.withLock { $0 } }

        struct Handler: LogHandler {
            let log: CapturedLog
            var logLevel: Logger.Level = .trace
            var metadata: Logger.Metadata = [:]

            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }

            func log(event: LogEvent) {
                let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let text = "\(event.level) \(event.message) \(fields.joined(separator: " "))"
                log.lines.withLock { $0.append(text) }
            }
        }

        var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }
    }

    /// A rule of 17 conditions: parsed (and stored) before the 16-condition limit, refused by the parser now.
    static let overTheLimit =
        "version=1.0; authorizationrules { "
        + (0..<17).map { "c\($0):[type!=\"q\"]" }.joined(separator: " && ") + " => permit(); };"

    static let permitting = "version=1.0; authorizationrules { => permit(); };"

    /// Store ``overTheLimit`` for the simulated enclave as an older version did (it parsed then): straight into the
    /// store, past the parser.
    static func storeOverTheLimit(in store: any ServiceStore) async throws {
        try await store.setPolicy(
            StoredPolicy(
                text: overTheLimit,
                jws: AttestationServiceCore.unsignedPolicyJWS(overTheLimit),
                hash: "older",
                updated: Date()
            ),
            type: AttestationType.simulatedEnclave.rawValue
        )
    }

    @Test func anOverLimitStoredPolicyIsTheOperatorsToFix() async throws {
        #expect(throws: PolicySyntaxError.self) { try AttestationPolicy(text: Self.overTheLimit) }
        try await ServiceFixture.with { fixture in
            try await Self.storeOverTheLimit(in: fixture.core.store)
            // The service starts over that store: one error line names the type.
            let log = CapturedLog()
            let core = try await AttestationServiceCore(
                configuration: fixture.core.configuration,
                store: fixture.core.store,
                logger: log.logger
            )
            let reported = log.all.filter { $0.contains("stored policy invalid") }
            #expect(reported.count == 1, "\(log.all)")
            #expect(reported.first?.hasPrefix("error ") == true, "\(reported)")
            #expect(reported.first?.contains("type=SimulatedEnclave") == true, "\(reported)")
            #expect(reported.first?.contains("more than 16 conditions") == true, "\(reported)")
            let invalid = try await core.checkStoredPolicies()
            #expect(Array(invalid.keys) == [.simulatedEnclave])

            // Attestation of that type: 500 StoredPolicyInvalid telling the operator what to do, not a 400.
            let runtime = Array("bound".utf8)
            let request = AttestationServiceCore.AttestRequest(
                evidence: try fixture.evidence(binding: runtime),
                runtimeData: (runtime, false)
            )
            let refused = await #expect(throws: ServiceError.self) {
                try await core.attest(type: .simulatedEnclave, request: request)
            }
            #expect(refused?.statusCode == 500, "\(String(describing: refused))")
            #expect(refused?.code == "StoredPolicyInvalid", "\(String(describing: refused))")
            #expect(refused?.message.contains("enclave policy set") == true, "\(String(describing: refused))")
            #expect(refused?.message.contains("enclave policy reset") == true, "\(String(describing: refused))")
            // Over HTTP the same, in MAA's error shape; the log line is not repeated for every request.
            let app = Application(router: AttestationServer.router(core: core, maxBodySize: 256 << 10))
            try await app.test(.router) { client in
                let response = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: ServiceFixture.body(evidence: request.evidence, runtimeData: runtime))
                )
                #expect(response.status == .internalServerError, "\(response.text)")
                #expect(response.errorCode == "StoredPolicyInvalid", "\(response.text)")
            }
            #expect(log.all.filter { $0.contains("stored policy invalid") }.count == 1, "\(log.all)")

            // Reset: the default policy is in force and attestation works again.
            _ = try await core.resetPolicy(type: .simulatedEnclave, credential: ServiceFixture.adminToken)
            #expect(try await core.checkStoredPolicies().isEmpty)
            _ = try await core.attest(type: .simulatedEnclave, request: request)

            // The same after a new policy is set over the old one.
            try await Self.storeOverTheLimit(in: fixture.core.store)
            await #expect(throws: ServiceError.self) {
                try await core.attest(type: .simulatedEnclave, request: request)
            }
            _ = try await core.setPolicy(
                type: .simulatedEnclave,
                jws: AttestationServiceCore.unsignedPolicyJWS(Self.permitting),
                credential: ServiceFixture.adminToken
            )
            _ = try await core.attest(type: .simulatedEnclave, request: request)
        }
    }
}
