import AttestationClient
import AttestationService
import AttestationServicePostgres
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Two service instances on different ports sharing one PostgreSQL: one signing key set, one JWKS, one set of
/// policies. `.ci/run` starts a private PostgreSQL cluster and sets `ENCLAVEKIT_TEST_POSTGRES_URL`
/// (`Scripts/test-postgres.sh` does the same by hand).
@Suite(
    "Attestation service: replicas on PostgreSQL",
    .enabled(
        if: ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"] != nil,
        "needs a PostgreSQL server: set ENCLAVEKIT_TEST_POSTGRES_URL (.ci/run and Scripts/test-postgres.sh start one)"
    )
)
struct PostgresReplicaTests {
    @Test func twoInstancesShareKeysAndPolicies() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["ENCLAVEKIT_TEST_POSTGRES_URL"])
        try await ServiceFixture.with { fixture in
            // Two instances start together on the same database (both race to create the key).
            async let first = PostgresServiceStore.connect(url: url)
            async let second = PostgresServiceStore.connect(url: url)
            let (storeA, storeB) = try await (first, second)
            async let coreA = AttestationServiceCore(configuration: fixture.core.configuration, store: storeA)
            async let coreB = AttestationServiceCore(configuration: fixture.core.configuration, store: storeB)
            let (a, b) = try await (coreA, coreB)
            #expect(a.signer.keyID == b.signer.keyID)
            #expect(a.signer.jwksJSON == b.signer.jwksJSON)

            let appA = Application(
                router: AttestationServer.router(core: a),
                configuration: .init(address: .hostname("127.0.0.1", port: 0))
            )
            let appB = Application(
                router: AttestationServer.router(core: b),
                configuration: .init(address: .hostname("127.0.0.1", port: 0))
            )
            let runtime = Array("replica".utf8)
            let body = ServiceFixture.body(evidence: try fixture.evidence(binding: runtime), runtimeData: runtime)
            try await appA.test(.live) { clientA in
                try await appB.test(.live) { clientB in
                    #expect(clientA.port != clientB.port)
                    // A token from A verifies against B's JWKS.
                    let issued = try await clientA.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(string: body)
                    )
                    let token = try #require(issued.json["token"] as? String, "\(issued.text)")
                    let jwksB = try await clientB.execute(uri: "/certs", method: .get).text
                    let claims = try await TokenVerifier(jwks: jwksB, issuer: "http://attestation.test").verify(token)
                    #expect(claims["x-ms-attestation-type"] == .string("simulated-sgx"))

                    // A policy set through B refuses the evidence at A; reset through A restores it at B.
                    let refusing = "version=1.0; authorizationrules { => deny(); };"
                    let put = try await clientB.execute(
                        uri: "/policies/SimulatedEnclave",
                        method: .put,
                        headers: ServiceFixture.admin,
                        body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(refusing))
                    )
                    #expect(put.status == .ok, "\(put.text)")
                    let refused = try await clientA.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(string: body)
                    )
                    #expect(refused.errorCode == "PolicyEvaluationError", "\(refused.text)")
                    _ = try await clientA.execute(
                        uri: "/policies/SimulatedEnclave:reset",
                        method: .post,
                        headers: ServiceFixture.admin
                    )
                    let again = try await clientB.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(string: body)
                    )
                    #expect(again.status == .ok, "\(again.text)")

                    // A challenge issued by A is good once, at B.
                    let nonce = try #require(
                        try await clientA.execute(uri: "/challenge", method: .get).json["nonce"] as? String
                    )
                    let bound = Array("{\"challenge\":\"\(nonce)\"}".utf8)
                    let challengeBody = ServiceFixture.body(
                        evidence: try fixture.evidence(binding: bound),
                        runtimeData: bound,
                        json: true
                    )
                    let used = try await clientB.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(string: challengeBody)
                    )
                    #expect(used.status == .ok, "\(used.text)")
                    let reused = try await clientA.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(string: challengeBody)
                    )
                    #expect(reused.errorCode == "InvalidChallenge")
                }
            }
            let audit = try await storeA.auditRecords(limit: 10)
            #expect(audit.count >= 4)
            try await storeA.close()
            try await storeB.close()
        }
    }
}
