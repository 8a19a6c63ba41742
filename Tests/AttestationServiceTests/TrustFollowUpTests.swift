import Attestation
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import Foundation
import Testing
import X509

/// H10's attacks on the trust hardening: a signed policy request replayed on another service, a rotated
/// administrator token still accepted by a running replica, audit rows filled by echoed input, an exhausted challenge
/// table, a draft request spending a challenge, duplicate JSON keys read differently by the service and by clients,
/// versions that are not integers, a token file owned by another user.
@Suite("Attestation service: trust hardening follow-up")
struct TrustFollowUpTests {
    typealias Signer = TrustHardeningTests.Signer

    static let permitting = "version=1.0; authorizationrules { => permit(); };"

    /// A signed request whose payload names `audience` (or none).
    static func request(_ signer: Signer, audience: String?, version: Int, extra: String = "") throws -> String {
        var payload =
            "{\"x-enclavekit-policy-type\":\"SgxEnclave\",\"x-enclavekit-policy-operation\":\"set\","
            + "\"x-enclavekit-policy-version\":\(version),"
            + "\"AttestationPolicy\":\"\(Base64URL.encode(Array(Self.permitting.utf8)))\"" + extra
        if let audience { payload += ",\"x-enclavekit-policy-audience\":\"\(audience)\"" }
        return try signer.jws(payload: payload + "}")
    }

    // MARK: F1 a signed policy request names the service it is for

    @Test func aSignedPolicyRequestForAnotherServiceIsRefused() async throws {
        let signer = try Signer()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            let core = fixture.core
            let elsewhere = try Self.request(signer, audience: "https://other.example", version: 1)
            let moved = await #expect(throws: ServiceError.self) {
                try await core.setPolicy(type: .sgxEnclave, jws: elsewhere)
            }
            #expect(moved?.code == "PolicyAudienceMismatch", "\(String(describing: moved))")
            let unnamed = try Self.request(signer, audience: nil, version: 2)
            let anywhere = await #expect(throws: ServiceError.self) {
                try await core.setPolicy(type: .sgxEnclave, jws: unnamed)
            }
            #expect(anywhere?.code == "InvalidPolicyDocument", "\(String(describing: anywhere))")
            #expect(try await core.currentPolicy(type: .sgxEnclave).isDefault)
            let named = try Self.request(signer, audience: "http://attestation.test", version: 3)
            _ = try await core.setPolicy(type: .sgxEnclave, jws: named)
            #expect(try await core.currentPolicy(type: .sgxEnclave).isDefault == false)
        }
    }

    /// `enclave policy set` with a signer fills the audience from `--service`; a request for another service is
    /// refused. The service runs on port 0: its issuer names the port it bound, so the two agree.
    @Test func thePolicyCommandNamesTheServiceItSignsFor() async throws {
        let signer = try Signer()
        try await ServiceFixture.with { fixture in
            let keyPath = fixture.directory + "/signer-key.pem"
            let certificatePath = fixture.directory + "/signer.pem"
            try Data(signer.key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: keyPath))
            try Data(try signer.certificate.serializeAsPEM().pemString.utf8)
                .write(to: URL(fileURLWithPath: certificatePath))
            let server = try ServedProcess([
                "--data-dir", fixture.directory + "/served", "--insecure-http", "--policy-signer", certificatePath,
            ])
            let service = server.base
            let policy = fixture.directory + "/policy.txt"
            try Data(Self.permitting.utf8).write(to: URL(fileURLWithPath: policy))
            let signed = ["--signer-key", keyPath, "--signer-cert", certificatePath]
            let elsewhere = try ChildProcess.run(
                ChildProcess.cli,
                ["policy", "set", "--service", service, "--type", "SgxEnclave", "--audience", "https://other.example"]
                    + signed + [policy]
            )
            #expect(elsewhere.status != 0)
            #expect(elsewhere.output.contains("PolicyAudienceMismatch"), "\(elsewhere.output)")
            let set = try ChildProcess.run(
                ChildProcess.cli,
                ["policy", "set", "--service", service, "--type", "SgxEnclave"] + signed + [policy]
            )
            #expect(set.status == 0, "\(set.output)")
        }
    }

    // MARK: F2 rotating the administrator token revokes the old one everywhere

    @Test func aRotatedAdministratorTokenIsRefusedByARunningReplica() async throws {
        try await ServiceFixture.with { fixture in
            let old = AdminCredential(token: ServiceFixture.adminToken)
            _ = try await fixture.core.store.adminTokenDigest(orInsert: old.digest, replacing: false)
            // A second instance on the same SQLite data directory, started with the old token.
            let replicaStore = try await SQLiteServiceStore.open(directory: fixture.directory + "/data")
            let replica = try await AttestationServiceCore(
                configuration: fixture.core.configuration,
                store: replicaStore
            )
            // The replica has used the old token (its digest is cached for at most 2 seconds).
            _ = try await replica.resetPolicy(type: .sgxEnclave, credential: ServiceFixture.adminToken)
            // The first instance rotates (as `--rotate-admin-token` does).
            let rotated = "rotated-admin-token-0123456789abcdef"
            _ = try await fixture.core.store.adminTokenDigest(
                orInsert: AdminCredential(token: rotated).digest,
                replacing: true
            )
            try await Task.sleep(for: .seconds(fixture.core.configuration.adminCredentialRefresh + 0.1))
            let stale = await #expect(throws: ServiceError.self) {
                try await replica.resetPolicy(type: .sgxEnclave, credential: ServiceFixture.adminToken)
            }
            #expect(stale?.code == "AdminCredentialInvalid", "\(String(describing: stale))")
            await #expect(throws: Never.self) {
                try await replica.resetPolicy(type: .sgxEnclave, credential: rotated)
            }
            try await replicaStore.close()
        }
    }

    // MARK: F3 nothing unbounded is echoed into errors and audit rows

    @Test func aHugeBadDraftPolicyIsNotEchoedIntoTheAudit() async throws {
        try await ServiceFixture.with { fixture in
            // A draft is at most 64 KiB (`maxDraftPolicyLength`): one just under it reaches the parser, one far over
            // it is refused before; neither is echoed.
            for (length, code) in [(60_000, "InvalidPolicy"), (200_000, "DraftPolicyTooLarge")] {
                let identifier = String(repeating: "x", count: length)
                let draft = "version=1.0; authorizationrules { \(identifier) };"
                let request = AttestationServiceCore.AttestRequest(
                    evidence: try fixture.evidence(binding: []),
                    draftPolicy: draft
                )
                let refused = await #expect(throws: ServiceError.self) {
                    try await fixture.core.attest(type: .simulatedEnclave, request: request)
                }
                #expect(refused?.code == code, "\(String(describing: refused?.code))")
                #expect((refused?.message.utf8.count ?? .max) <= 512, "\(refused?.message.utf8.count ?? -1) bytes")
                let audit = try #require(try await fixture.core.store.auditRecords(limit: 1).first)
                #expect(audit.detail.utf8.count <= 1024, "\(audit.detail.utf8.count) bytes")
            }
        }
    }

    // MARK: F4 anonymous challenges create no state

    @Test func twentyThousandAnonymousChallengesLockNobodyOut() async throws {
        try await ServiceFixture.with { fixture in
            let core = fixture.core
            let time = Date()
            var last = ""
            for _ in 0..<20_000 { last = try await core.challenge(at: time).nonce }
            // Nothing was stored, and a client still gets a challenge that works, once.
            #expect(try await core.store.consumeChallenge(last, at: time) == false)
            let issued = try await core.challenge(at: time)
            let runtime = Array("{\"challenge\":\"\(issued.nonce)\"}".utf8)
            let request = AttestationServiceCore.AttestRequest(
                evidence: try fixture.evidence(binding: runtime),
                runtimeData: (runtime, true)
            )
            _ = try await core.attest(type: .simulatedEnclave, request: request, at: time)
            let again = await #expect(throws: ServiceError.self) {
                try await core.attest(type: .simulatedEnclave, request: request, at: time)
            }
            #expect(again?.code == "InvalidChallenge")
            // A challenge whose expiry was edited no longer verifies.
            var bytes = try #require(Base64URL.decode(last))
            bytes[bytes.count - 33] ^= 1
            let edited = Array("{\"challenge\":\"\(Base64URL.encode(bytes))\"}".utf8)
            let forged = await #expect(throws: ServiceError.self) {
                try await core.attest(
                    type: .simulatedEnclave,
                    request: .init(evidence: try fixture.evidence(binding: edited), runtimeData: (edited, true)),
                    at: time
                )
            }
            #expect(forged?.code == "InvalidChallenge")
        }
    }

    // MARK: F8 a draft neither spends a challenge nor reads as a decision

    @Test func aDraftRequestDoesNotConsumeTheChallenge() async throws {
        try await ServiceFixture.with { fixture in
            let core = fixture.core
            let issued = try await core.challenge()
            let runtime = Array("{\"challenge\":\"\(issued.nonce)\"}".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            let draft = AttestationServiceCore.AttestRequest(
                evidence: evidence,
                runtimeData: (runtime, true),
                draftPolicy: Self.permitting
            )
            _ = try await core.attest(type: .simulatedEnclave, request: draft)
            let row = try #require(try await core.store.auditRecords(limit: 1).first)
            #expect(row.result == "draft", "\(row.result)")
            _ = try await core.attest(
                type: .simulatedEnclave,
                request: .init(evidence: evidence, runtimeData: (runtime, true))
            )
            #expect(try await core.store.auditRecords(limit: 1).first?.result == "permitted")
        }
    }

    // MARK: F9 one reading of every JSON document

    @Test func runtimeDataWithDuplicateKeysIsRefused() async throws {
        try await ServiceFixture.with { fixture in
            for text in [
                #"{"challenge":"A","challenge":"B"}"#, #"{"a":{"k":1,"k":2}}"#,
                #"{"challenge":"A","\u0063hallenge":"B"}"#,
            ] {
                let runtime = Array(text.utf8)
                for json in [true, false] {
                    let refused = await #expect(throws: ServiceError.self) {
                        try await fixture.core.attest(
                            type: .simulatedEnclave,
                            request: .init(
                                evidence: try fixture.evidence(binding: runtime),
                                runtimeData: (runtime, json)
                            )
                        )
                    }
                    #expect(refused?.code == "DuplicateJSONKey", "\(text): \(String(describing: refused))")
                }
            }
            let fine = Array(#"{"a":{"k":1},"b":{"k":2},"s":"\"k\":1,\"k\""}"#.utf8)
            _ = try await fixture.core.attest(
                type: .simulatedEnclave,
                request: .init(evidence: try fixture.evidence(binding: fine), runtimeData: (fine, true))
            )
        }
    }

    @Test func aSignedPolicyVersionMustBeAnIntegerLiteral() async throws {
        let signer = try Signer()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            for literal in ["true", "2.0", "1e3", "\"4\""] {
                let payload =
                    "{\"x-enclavekit-policy-type\":\"SgxEnclave\",\"x-enclavekit-policy-operation\":\"reset\","
                    + "\"x-enclavekit-policy-audience\":\"http://attestation.test\","
                    + "\"x-enclavekit-policy-version\":\(literal)}"
                let refused = await #expect(throws: ServiceError.self) {
                    try await fixture.core.resetPolicy(type: .sgxEnclave, jws: try signer.jws(payload: payload))
                }
                #expect(refused?.code == "InvalidPolicyDocument", "\(literal): \(String(describing: refused))")
            }
            let duplicated = try Self.request(
                signer,
                audience: "http://attestation.test",
                version: 7,
                extra: ",\"x-enclavekit-policy-version\":1"
            )
            let twice = await #expect(throws: ServiceError.self) {
                try await fixture.core.setPolicy(type: .sgxEnclave, jws: duplicated)
            }
            #expect(twice?.code == "DuplicateJSONKey", "\(String(describing: twice))")
        }
    }

    // MARK: F5 a relying party checks freshness through the challenge, not the nonce

    @Test func theNonceIsAnEchoAndTheChallengeIsFreshness() async throws {
        try await ServiceFixture.with { fixture in
            let core = fixture.core
            let verifier = try await TokenVerifier(jwks: core.signer.jwksJSON, issuer: "http://attestation.test")
            // Old evidence, any nonce the requester likes: the nonce check passes, the challenge check does not.
            let stale = Array("{\"key\":\"k\"}".utf8)
            let replayed = try await core.attest(
                type: .simulatedEnclave,
                request: .init(
                    evidence: try fixture.evidence(binding: stale),
                    runtimeData: (stale, true),
                    nonce: "relying-party-nonce"
                )
            )
            _ = try await verifier.verify(replayed, nonce: "relying-party-nonce")
            let issued = try await core.challenge()
            let refused = await #expect(throws: TokenVerifier.Failure.self) {
                try await verifier.verify(replayed, challenge: issued.nonce)
            }
            #expect(refused?.reason.contains("x-enclavekit-challenge") == true, "\(String(describing: refused))")
            // Evidence bound to the challenge: accepted.
            let fresh = Array("{\"challenge\":\"\(issued.nonce)\"}".utf8)
            let token = try await core.attest(
                type: .simulatedEnclave,
                request: .init(evidence: try fixture.evidence(binding: fresh), runtimeData: (fresh, true))
            )
            let claims = try await verifier.verify(token, challenge: issued.nonce)
            #expect(claims["x-enclavekit-challenge"]?.stringValue == issued.nonce)
        }
    }

    // MARK: F6 the token file belongs to this user

    @Test func anAdministratorTokenFileOwnedByAnotherUserIsRefused() async throws {
        try await ServiceFixture.with { fixture in
            let path = fixture.directory + "/data/admin-token"
            _ = try AdminCredential.loadOrCreate(path: path)
            // Another (unprivileged) user's file: only root can make one here; as another user the file is theirs.
            let other: UInt32 = geteuid() == 0 ? 65534 : geteuid()
            try #require(geteuid() == 0, "needs root to give the file to another user")
            #expect(chown(path, other, other) == 0)
            let refused = #expect(throws: ServiceError.self) { try AdminCredential.loadOrCreate(path: path) }
            #expect(refused?.code == "AdminTokenUnusable", "\(String(describing: refused))")
            // The TLS private key likewise.
            _ = try TLSIdentity.selfSigned(directory: fixture.directory + "/served")
            let tls = fixture.directory + "/served/tls"
            _ = try TLSIdentity(certificatePath: tls + "/certificate.pem", keyPath: tls + "/private-key.pem")
            #expect(chown(tls + "/private-key.pem", other, other) == 0)
            let key = #expect(throws: ServiceError.self) {
                try TLSIdentity(certificatePath: tls + "/certificate.pem", keyPath: tls + "/private-key.pem")
            }
            #expect(key?.message.contains("owned by uid 65534") == true, "\(String(describing: key))")
        }
    }

    // MARK: F7 parents of a new data directory are not world-writable, whatever the umask

    @Test func dataDirectoryParentsHaveExplicitModes() async throws {
        let base = NSTemporaryDirectory() + "enclavekit-umask-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        // Under the umask the tests run with; the most permissive umask is tested in a child process
        // (CLITests' serveAttestVerifyAndStop), since umask is per process and other tests create files meanwhile.
        try SecretFile.prepareDirectory(base + "/a/b/c")
        for (path, expected) in [(base, 0o755), (base + "/a", 0o755), (base + "/a/b", 0o755), (base + "/a/b/c", 0o700)]
        {
            let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(mode == expected, "\(path) is \(String(mode, radix: 8))")
        }
    }
}
