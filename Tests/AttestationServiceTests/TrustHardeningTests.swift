import Attestation
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftASN1
import Testing
import X509

/// The attacks of issue 9 on the service: anonymous or replayed policy management, a policy token taken for an
/// attestation token, freshness bypassed through the runtime data's type, unverified init-time data, vTPM evidence
/// on another TEE's route, a policy that never finishes, and an unbounded challenge table.
@Suite("Attestation service: trust hardening")
struct TrustHardeningTests {
    /// A policy signer: a P-256 key and its self-signed certificate.
    struct Signer {
        let key = P256.Signing.PrivateKey()
        let certificate: Certificate

        init() throws {
            certificate = try .selfSigned(.init(key), .ecdsaWithSHA256, commonName: "policy admin")
        }

        /// A JWS (ES256, `x5c`) over exactly `payload`.
        func jws(payload: String) throws -> String {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let x5c = Data(serializer.serializedBytes).base64EncodedString()
            let header = Base64URL.encode(Array("{\"alg\":\"ES256\",\"x5c\":[\"\(x5c)\"]}".utf8))
            let body = Base64URL.encode(Array(payload.utf8))
            let signature = try key.signature(for: Array((header + "." + body).utf8))
            return header + "." + body + "." + Base64URL.encode(Array(signature.rawRepresentation))
        }

        /// A signed management request in this service's shape.
        func request(_ operation: String, type: String, version: Int, policy: String? = nil) throws -> String {
            var payload =
                "{\"x-enclavekit-policy-type\":\"\(type)\",\"x-enclavekit-policy-operation\":\"\(operation)\","
                + "\"x-enclavekit-policy-version\":\(version),"
                + "\"x-enclavekit-policy-audience\":\"http://attestation.test\""
            if let policy { payload += ",\"AttestationPolicy\":\"\(Base64URL.encode(Array(policy.utf8)))\"" }
            return try jws(payload: payload + "}")
        }
    }

    static let refusing = "version=1.0; authorizationrules { => deny(); };"
    static let permitting = "version=1.0; authorizationrules { => permit(); };"

    // MARK: Policy management is authenticated

    @Test func anonymousPolicyChangesAreRefused() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let put = try await client.execute(
                    uri: "/policies/SimulatedEnclave",
                    method: .put,
                    body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(Self.refusing))
                )
                #expect(put.status == .unauthorized, "\(put.text)")
                #expect(put.errorCode == "AdminCredentialRequired", "\(put.text)")
                let wrong = try await client.execute(
                    uri: "/policies/SimulatedEnclave",
                    method: .put,
                    headers: [.authorization: "Bearer not-the-token"],
                    body: ByteBuffer(string: AttestationServiceCore.unsignedPolicyJWS(Self.refusing))
                )
                #expect(wrong.status == .unauthorized, "\(wrong.text)")
                #expect(wrong.errorCode == "AdminCredentialInvalid", "\(wrong.text)")
                let reset = try await client.execute(uri: "/policies/SimulatedEnclave:reset", method: .post)
                #expect(reset.status == .unauthorized, "\(reset.text)")
                #expect(reset.errorCode == "AdminCredentialRequired", "\(reset.text)")
                let current = try await client.execute(uri: "/policies/SimulatedEnclave", method: .get).json
                #expect(current["isDefault"] as? Bool == true)
            }
        }
    }

    /// The administrator token file: created 0600, read back the same, refused when others may read it; the store
    /// keeps one digest for every instance.
    @Test func theAdministratorTokenFileIsPrivateAndShared() async throws {
        try await ServiceFixture.with { fixture in
            let path = fixture.directory + "/data/admin-token"
            let (token, created) = try AdminCredential.loadOrCreate(path: path)
            #expect(created)
            #expect(token.utf8.count >= 40)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let again = try AdminCredential.loadOrCreate(path: path)
            #expect(again.token == token && !again.created)
            let credential = AdminCredential(token: token)
            #expect(credential.matches(token))
            #expect(!credential.matches(token + "x"))
            #expect(!credential.matches(""))

            let store = fixture.core.store
            #expect(
                try await store.adminTokenDigest(orInsert: credential.digest, replacing: false) == credential.digest
            )
            let other = AdminCredential(token: "another instance's token")
            #expect(try await store.adminTokenDigest(orInsert: other.digest, replacing: false) == credential.digest)
            #expect(try await store.adminTokenDigest(orInsert: other.digest, replacing: true) == other.digest)

            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            let refused = #expect(throws: ServiceError.self) { try AdminCredential.loadOrCreate(path: path) }
            #expect(refused?.code == "AdminTokenUnusable")
        }
    }

    @Test func withSignersAnUnsignedResetIsRefused() async throws {
        let signer = try Signer()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            try await fixture.application.test(.router) { client in
                let set = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    body: ByteBuffer(
                        string: try signer.request("set", type: "SgxEnclave", version: 1, policy: Self.refusing)
                    )
                )
                #expect(set.status == .ok, "\(set.text)")
                let reset = try await client.execute(uri: "/policies/SgxEnclave:reset", method: .post)
                #expect(reset.status == .unauthorized, "\(reset.text)")
                #expect(reset.errorCode == "PolicySignatureRequired", "\(reset.text)")
                #expect(
                    try await client.execute(uri: "/policies/SgxEnclave", method: .get).json["isDefault"] as? Bool
                        == false
                )
            }
        }
    }

    @Test func aReplayedOlderSignedPolicyIsRefused() async throws {
        let signer = try Signer()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            try await fixture.application.test(.router) { client in
                let old = try signer.request("set", type: "SgxEnclave", version: 1, policy: Self.permitting)
                let new = try signer.request("set", type: "SgxEnclave", version: 2, policy: Self.refusing)
                for jws in [old, new] {
                    let response = try await client.execute(
                        uri: "/policies/SgxEnclave",
                        method: .put,
                        body: ByteBuffer(string: jws)
                    )
                    #expect(response.status == .ok, "\(response.text)")
                }
                for jws in [old, new] {
                    let replayed = try await client.execute(
                        uri: "/policies/SgxEnclave",
                        method: .put,
                        body: ByteBuffer(string: jws)
                    )
                    #expect(replayed.status == .forbidden, "\(replayed.text)")
                    #expect(replayed.errorCode == "PolicyVersionNotNewer", "\(replayed.text)")
                }
                #expect(
                    try await client.execute(uri: "/policies/SgxEnclave", method: .get).json["policy"] as? String
                        == Self.refusing
                )
                // A reset is a version too: the old permit-all cannot come back after it.
                let reset = try await client.execute(
                    uri: "/policies/SgxEnclave:reset",
                    method: .post,
                    body: ByteBuffer(string: try signer.request("reset", type: "SgxEnclave", version: 3))
                )
                #expect(reset.status == .ok, "\(reset.text)")
                let again = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    body: ByteBuffer(string: new)
                )
                #expect(again.errorCode == "PolicyVersionNotNewer", "\(again.text)")
                // A signed policy without a freshness value (MAA's form, as Microsoft's clients send it) is good
                // once: sent again, it is a replay.
                let bare = try signer.jws(
                    payload: "{\"AttestationPolicy\":\"\(Base64URL.encode(Array(Self.permitting.utf8)))\"}"
                )
                let unversioned = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    body: ByteBuffer(string: bare)
                )
                #expect(unversioned.status == .ok, "\(unversioned.text)")
                let replayedBare = try await client.execute(
                    uri: "/policies/SgxEnclave",
                    method: .put,
                    body: ByteBuffer(string: bare)
                )
                #expect(replayedBare.errorCode == "PolicyRequestReplayed", "\(replayedBare.text)")
            }
        }
    }

    @Test func aSignedPolicyForOneTypeIsRefusedOnAnother() async throws {
        let signer = try Signer()
        try await ServiceFixture.with(policySigners: [signer.certificate]) { fixture in
            try await fixture.application.test(.router) { client in
                let forSgx = try signer.request("set", type: "SgxEnclave", version: 1, policy: Self.permitting)
                let moved = try await client.execute(
                    uri: "/policies/TdxVm",
                    method: .put,
                    body: ByteBuffer(string: forSgx)
                )
                #expect(moved.status == .forbidden, "\(moved.text)")
                #expect(moved.errorCode == "PolicyTypeMismatch", "\(moved.text)")
                // Nor can a signed "set" serve as a reset, or a reset as a set.
                let asReset = try await client.execute(
                    uri: "/policies/SgxEnclave:reset",
                    method: .post,
                    body: ByteBuffer(string: forSgx)
                )
                #expect(asReset.errorCode == "PolicyOperationMismatch", "\(asReset.text)")
                #expect(
                    try await client.execute(uri: "/policies/TdxVm", method: .get).json["isDefault"] as? Bool == true
                )
            }
        }
    }

    @Test func thePolicyTokenIsNotAnAttestationToken() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let response = try await client.execute(uri: "/policies/SimulatedEnclave", method: .get)
                let token = try #require(response.json["token"] as? String, "\(response.text)")
                let jwks = try await client.execute(uri: "/certs", method: .get).text
                let verifier = try await TokenVerifier(jwks: jwks, issuer: "http://attestation.test")
                let failure = await #expect(throws: TokenVerifier.Failure.self) { try await verifier.verify(token) }
                #expect(failure?.reason.contains("not an attestation token") == true, "\(String(describing: failure))")
                let header = try #require(Base64URL.decode(String(token.split(separator: ".")[0])))
                #expect(String(decoding: header, as: UTF8.self).contains("\"typ\":\"policy+jwt\""))
            }
        }
    }

    // MARK: Freshness

    @Test func binaryRuntimeDataBoundToAConsumedChallengeIsRefused() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                let nonce = try #require(
                    try await client.execute(uri: "/challenge", method: .get).json["nonce"] as? String
                )
                let runtime = Array("{\"challenge\":\"\(nonce)\"}".utf8)
                let evidence = try fixture.evidence(binding: runtime)
                let first = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: ServiceFixture.body(evidence: evidence, runtimeData: runtime, json: true))
                )
                #expect(first.status == .ok, "\(first.text)")
                let replayed = try await client.execute(
                    uri: "/attest/SimulatedEnclave",
                    method: .post,
                    body: ByteBuffer(string: ServiceFixture.body(evidence: evidence, runtimeData: runtime, json: false))
                )
                #expect(replayed.status == .badRequest, "\(replayed.text)")
                #expect(replayed.errorCode == "InvalidChallenge", "\(replayed.text)")
            }
        }
    }

    // MARK: Nothing unverified in signed tokens

    @Test func initTimeDataTheEvidenceDoesNotBindIsRefused() async throws {
        try await ServiceFixture.with { fixture in
            let runtime = Array("r".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            try await fixture.application.test(.router) { client in
                for json in [false, true] {
                    let initTime = json ? "{\"admin\":true}" : "configuration"
                    let extra =
                        ",\"initTimeData\":{\"data\":\"\(Base64URL.encode(Array(initTime.utf8)))\",\"dataType\":\"\(json ? "JSON" : "Binary")\"}"
                    let response = try await client.execute(
                        uri: "/attest/SimulatedEnclave",
                        method: .post,
                        body: ByteBuffer(
                            string: ServiceFixture.body(evidence: evidence, runtimeData: runtime, extra: extra)
                        )
                    )
                    #expect(response.status == .badRequest, "\(response.text)")
                    #expect(response.errorCode == "InitTimeDataNotBound", "\(response.text)")
                }
            }
        }
    }

    @Test func tdxVTPMEvidenceIsRefusedOnSevSnpVm() async throws {
        let evidence = try Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/evidence-v1.json")
        let time = Date(timeIntervalSince1970: 1_752_919_234)
        try await ServiceFixture.with { fixture in
            let wrong = await #expect(throws: ServiceError.self) {
                try await fixture.core.attest(
                    type: .sevSnpVm,
                    request: .init(evidence: evidence),
                    at: time
                )
            }
            #expect(wrong?.code == "WrongEvidenceType", "\(String(describing: wrong))")
        }
    }

    /// The same TDX vTPM evidence on its own route is accepted (chain-only here: the vectors carry no collateral),
    /// and names the guest's PCRs.
    @Test func tdxVTPMEvidenceIsAcceptedOnTdxVm() async throws {
        let evidence = try Vectors.bytes("azure-vtpm/trustee-az-tdx-vtpm/evidence-v1.json")
        let time = Date(timeIntervalSince1970: 1_752_919_234)
        let configure: (inout AttestationServiceCore.Configuration) -> Void = { $0.allowChainOnly = true }
        try await ServiceFixture.with(evidencePolicy: ServiceFixture.permissiveEvidencePolicy, configure: configure) {
            fixture in
            let token = try await fixture.core.attest(type: .tdxVm, request: .init(evidence: evidence), at: time)
            let verifier = try await TokenVerifier(
                jwks: fixture.core.signer.jwksJSON,
                issuer: "http://attestation.test"
            )
            let claims = try await verifier.verify(token, at: time)
            #expect(claims["x-ms-attestation-type"] == .string("tdxvm"))
            #expect(claims["x-enclavekit-tpm-pcr0"]?.stringValue?.hasPrefix("782b20b1") == true)
            #expect(claims["x-enclavekit-tpm-nonce"] == .string(Hex.encode(Array("challenge".utf8))))
        }
    }

    // MARK: Fail-closed defaults

    /// By default the service refuses what EvidencePolicy's defaults refuse, before any attestation policy: here a
    /// SEV-SNP report from VMPL 1 (a VLEK-signed vector).
    @Test func theServiceRefusesVMPLAboveZeroByDefault() async throws {
        let report = try Vectors.bytes("snp/trustee/test-vlek-report.bin")
        let vlek = try Vectors.bytes("snp/trustee/test-vlek.der")
        let document = "{\"report\":\"\(Base64URL.encode(report))\",\"vcek\":\"\(Base64URL.encode(vlek))\"}"
        let time = Date(timeIntervalSince1970: 1_752_919_234)
        try await ServiceFixture.with { fixture in
            let refused = await #expect(throws: ServiceError.self) {
                try await fixture.core.attest(
                    type: .sevSnpVm,
                    request: .init(evidence: Array(document.utf8)),
                    at: time
                )
            }
            #expect(refused?.code == "EvidencePolicyViolation", "\(String(describing: refused))")
            #expect(refused?.message.contains("VMPL") == true, "\(String(describing: refused))")
        }
        // Accepted once the operator allows VMPL 1 (`--max-vmpl 1`).
        var allowVMPL1 = EvidencePolicy()
        allowVMPL1.maximumVMPL = 1
        try await ServiceFixture.with(evidencePolicy: allowVMPL1) { fixture in
            let token = try await fixture.core.attest(
                type: .sevSnpVm,
                request: .init(evidence: Array(document.utf8)),
                at: time
            )
            #expect(token.split(separator: ".").count == 3)
        }
    }

    /// A debug enclave is refused by default whatever the attestation policy says (here the default permit-all),
    /// and accepted only where the operator allows debug (`--allow-debug`).
    @Test func theServiceRefusesDebugEnclavesByDefault() async throws {
        for allowDebug in [false, true] {
            var policy = EvidencePolicy()
            policy.allowDebug = allowDebug
            try await ServiceFixture.with(evidencePolicy: policy) { fixture in
                var debug = fixture.identity
                debug.attributes.insert(.debug)
                let runtime = Array("debug".utf8)
                let quote = try fixture.platform.quote(
                    for: debug,
                    reportData: Array(SHA256.hash(data: runtime)) + [UInt8](repeating: 0, count: 32)
                )
                let request = AttestationServiceCore.AttestRequest(evidence: quote, runtimeData: (runtime, false))
                if allowDebug {
                    let token = try await fixture.core.attest(type: .simulatedEnclave, request: request)
                    #expect(token.split(separator: ".").count == 3)
                } else {
                    let refused = await #expect(throws: ServiceError.self) {
                        try await fixture.core.attest(type: .simulatedEnclave, request: request)
                    }
                    #expect(refused?.code == "EvidencePolicyViolation", "\(String(describing: refused))")
                    #expect(refused?.message.contains("debug") == true, "\(String(describing: refused))")
                }
            }
        }
    }

    // MARK: The service can't be stalled

    /// Many always-true conditions and one never-true over every claim: the search would take ages; it is cut off
    /// by its step count with a named error while `/certs` keeps answering, and a graceful stop does not hang. The
    /// evaluation's wall-clock limit is set out of reach (10 minutes), so what cuts the attack off is the step budget
    /// (counted, not timed: about a second alone, however long a loaded machine takes), and the test fails if the
    /// budget is not applied. The time bounds are hang guards only (2 minutes, above every connection timeout of the
    /// server, 60 s idle included): CI runs the whole suite in parallel on two cores, where this took over 30 s.
    @Test func aBacktrackingPolicyIsCutOff() async throws {
        let conditions = (1...7).map { "c\($0):[issuer==\"AttestationService\"]" }.joined(separator: " && ")
        let attack =
            "version=1.0; authorizationrules { \(conditions) && [type==\"never\"] => permit(); => permit(); };"
        let stepsOnly: (inout AttestationServiceCore.Configuration) -> Void = { $0.policyEvaluationTimeout = 600 }
        try await ServiceFixture.with(configure: stepsOnly) { fixture in
            let runtime = Array("attack".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            let running = try await AttestationServer.start(core: fixture.core)
            let client = AttestationClient(endpoint: URL(string: "http://127.0.0.1:\(running.port)")!)
            let attackTask = Task { () -> String in
                do {
                    _ = try await client.attest(
                        type: "SimulatedEnclave",
                        evidence: evidence,
                        runtimeData: .init(data: runtime, dataType: .binary),
                        draftPolicy: attack
                    )
                    return "permitted"
                } catch let failure as AttestationClient.Failure {
                    return "\(failure.code): \(failure.message)"
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            let certs = await Self.within(Self.hangGuard) { try await client.certificates() }
            switch certs {
            case .some(.success(let keys)): #expect(keys.contains("\"keys\""))
            case .some(.failure(let error)): Issue.record("/certs failed: \(error)")
            case nil: Issue.record("/certs stalled behind the policy for \(Self.hangGuard)")
            }
            let outcome = await Self.within(Self.hangGuard) { try await attackTask.value }
            switch outcome {
            case .some(.success(let answer)):
                #expect(answer.hasPrefix("PolicyEvaluationLimitExceeded"), "\(answer)")
                #expect(answer.contains("limit of 1000000 steps"), "\(answer)")
            case .some(.failure(let error)): Issue.record("the attack request failed: \(error)")
            case nil: Issue.record("the policy evaluation ran for more than \(Self.hangGuard)")
            }
            let stopped = await Self.within(Self.hangGuard) { await running.stop() }
            #expect(stopped != nil, "the service did not stop within \(Self.hangGuard)")
        }
    }

    /// How long a step that takes a second alone may take before the test calls it hung: far above anything a loaded
    /// machine needs (the whole suite in parallel on two cores made seconds into tens of seconds), and above the
    /// server's longest connection timeout (60 s idle), so that only a hang reaches it.
    static let hangGuard = Duration.seconds(120)

    /// `enclave policy set/get/reset` against `enclave serve attestation`: with the administrator token file the
    /// change is made; without it, or with another token, it is refused by name.
    @Test func thePolicyCommandsUseTheAdministratorToken() async throws {
        try await ServiceFixture.with { fixture in
            let data = fixture.directory + "/served"
            let server = try ServedProcess(["--data-dir", data, "--insecure-http"])
            let service = server.base
            let policy = fixture.directory + "/policy.txt"
            try Data(Self.refusing.utf8).write(to: URL(fileURLWithPath: policy))
            let wrongToken = fixture.directory + "/wrong-token"
            try Data("not the administrator token".utf8).write(to: URL(fileURLWithPath: wrongToken))

            let wrong = try ChildProcess.run(
                ChildProcess.cli,
                [
                    "policy", "set", "--service", service, "--type", "SgxEnclave", "--admin-token-file", wrongToken,
                    policy,
                ]
            )
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("AdminCredentialInvalid"), "\(wrong.output)")
            let set = try ChildProcess.run(
                ChildProcess.cli,
                [
                    "policy", "set", "--service", service, "--type", "SgxEnclave", "--admin-token-file",
                    data + "/admin-token", policy,
                ]
            )
            #expect(set.status == 0, "\(set.output)")
            let get = try ChildProcess.run(
                ChildProcess.cli,
                ["policy", "get", "--service", service, "--type", "SgxEnclave"]
            )
            #expect(get.output.contains(Self.refusing), "\(get.output)")
            let reset = try ChildProcess.run(
                ChildProcess.cli,
                [
                    "policy", "reset", "--service", service, "--type", "SgxEnclave", "--admin-token-file",
                    data + "/admin-token",
                ]
            )
            #expect(reset.status == 0, "\(reset.output)")
            let after = try ChildProcess.run(
                ChildProcess.cli,
                ["policy", "get", "--service", service, "--type", "SgxEnclave"]
            )
            #expect(!after.output.contains(Self.refusing), "\(after.output)")
            #expect(after.output.contains("permit()"), "\(after.output)")
        }
    }

    /// `enclave serve attestation` as a process: SIGTERM while the backtracking policy is being evaluated stops it
    /// within seconds.
    @Test func sigtermStopsTheServiceDuringAnAttack() async throws {
        try await ServiceFixture.with { fixture in
            let server = try ServedProcess(
                ["--data-dir", fixture.directory + "/served", "--allow-simulated", "--insecure-http"],
                environment: ["ENCLAVEKIT_PLATFORM_DIR": fixture.directory + "/platform"]
            )
            let base = server.base
            let client = AttestationClient(endpoint: URL(string: base)!)
            // Started on port 0 without --issuer: the issuer names the port bound, not `:0`.
            #expect(try await client.verifier().issuer == base)
            let runtime = Array("sigterm".utf8)
            let evidence = try fixture.evidence(binding: runtime)
            let attack = Task { () -> String in
                do {
                    _ = try await client.attest(
                        type: "SimulatedEnclave",
                        evidence: evidence,
                        runtimeData: .init(data: runtime, dataType: .binary),
                        draftPolicy: Self.attackPolicy
                    )
                    return "permitted"
                } catch let failure as AttestationClient.Failure {
                    return failure.code
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let signalled = ContinuousClock.now
            let process = server.process
            process.terminate()
            // A hang guard, far above the second or so this takes alone (CI runs the suite in parallel on two cores).
            let exited = await Self.within(Self.hangGuard) { process.waitUntilExit() }
            #expect(exited != nil, "the service was still running \(ContinuousClock.now - signalled) after SIGTERM")
            let output =
                server.output + String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            // The attack reached the policy: it was cut off, or the stopping service closed its connection.
            let outcome = (try? await attack.value) ?? "other error"
            #expect(["PolicyEvaluationLimitExceeded", "Unreachable"].contains(outcome), "\(outcome)\n\(output)")
        }
    }

    /// Seven conditions every claim meets and one none does, over the service's claims.
    static let attackPolicy: String = {
        let conditions = (1...7).map { "c\($0):[issuer==\"AttestationService\"]" }.joined(separator: " && ")
        return "version=1.0; authorizationrules { \(conditions) && [type==\"never\"] => permit(); => permit(); };"
    }()

    /// The same policy stored (not as a draft) is cut off the same way.
    @Test func aStoredBacktrackingPolicyIsCutOff() async throws {
        let conditions = (1...7).map { "c\($0):[issuer==\"AttestationService\"]" }.joined(separator: " && ")
        let attack = "version=1.0; authorizationrules { \(conditions) && [type==\"never\"] => permit(); };"
        let policy = try AttestationPolicy(text: attack)
        let claims = (0..<60).map { PolicyClaim(type: "claim-\($0)", value: .integer($0)) }
        // Cut off by its step count; the bound is a hang guard (without the limit this runs for ages), far above the
        // second it takes alone, because CI runs the whole suite in parallel on two cores.
        let outcome = await Self.within(Self.hangGuard) { policy.evaluate(claims) }
        let decision = try #require(try outcome?.get(), "the evaluation ran for more than \(Self.hangGuard)")
        #expect(decision.limitExceeded)
        #expect(decision.permitted == false)
        #expect(decision.reason?.contains("evaluation limit") == true, "\(decision.reason ?? "")")
    }

    /// Challenges are stateless (see ``TrustFollowUpTests/twentyThousandAnonymousChallengesLockNobodyOut()``):
    /// issuing them over HTTP stores nothing and never answers 503.
    @Test func challengesOverHTTPStoreNothing() async throws {
        try await ServiceFixture.with { fixture in
            try await fixture.application.test(.router) { client in
                var nonces: Set<String> = []
                for _ in 0..<50 {
                    let issued = try await client.execute(uri: "/challenge", method: .get)
                    #expect(issued.status == .ok, "\(issued.text)")
                    nonces.insert(try #require(issued.json["nonce"] as? String))
                }
                #expect(nonces.count == 50)
            }
            let later = Date().addingTimeInterval(fixture.core.configuration.challengeLifetime + 1)
            let fresh = try await fixture.core.challenge(at: later)
            #expect(fresh.expires > later)
        }
    }

    @Test func auditRecordsPastTheRetentionAreDeleted() async throws {
        let configure: (inout AttestationServiceCore.Configuration) -> Void = { $0.auditRetention = 60 }
        try await ServiceFixture.with(configure: configure) { fixture in
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            let garbage = AttestationServiceCore.AttestRequest(evidence: [1, 2, 3])
            _ = try? await fixture.core.attest(type: .simulatedEnclave, request: garbage, at: start)
            #expect(try await fixture.core.store.auditRecords(limit: 10).count == 1)
            _ = try? await fixture.core.attest(type: .simulatedEnclave, request: garbage, at: start + 7200)
            let kept = try await fixture.core.store.auditRecords(limit: 10)
            #expect(kept.count == 1)
            #expect(kept.first?.time == start + 7200)
            // And a count: only the newest records stay.
            try await fixture.core.store.pruneAudit(before: start, keepingAtMost: 0)
            #expect(try await fixture.core.store.auditRecords(limit: 10).isEmpty)
        }
    }

    /// SEV-SNP vTPM evidence on its own route: the TPM quote's PCRs and nonce are claims of the token.
    @Test func vTPMEvidenceNamesTheGuest() async throws {
        let evidence = try Vectors.bytes("azure-vtpm/trustee-az-snp-vtpm/evidence-v1.json")
        let time = Date(timeIntervalSince1970: 1_752_919_234)
        try await ServiceFixture.with(evidencePolicy: ServiceFixture.permissiveEvidencePolicy) { fixture in
            let token = try await fixture.core.attest(type: .sevSnpVm, request: .init(evidence: evidence), at: time)
            let verifier = try await TokenVerifier(
                jwks: fixture.core.signer.jwksJSON,
                issuer: "http://attestation.test"
            )
            let claims = try await verifier.verify(token, at: time)
            #expect(claims["x-ms-attestation-type"] == .string("sevsnpvm"))
            #expect(claims["x-enclavekit-tpm-nonce"]?.stringValue?.hasPrefix("6368616c6c656e6765") == true)
            #expect(claims["x-enclavekit-tpm-pcr0"]?.stringValue?.hasPrefix("e15c4479") == true)
            #expect(claims["x-ms-azurevm-attested-pcrs"] == .array((0..<24).map { .integer($0) }))
        }
    }

    /// Runs `body`, giving up on waiting after `limit` (the body may go on in the background).
    static func within<T: Sendable>(
        _ limit: Duration,
        _ body: @escaping @Sendable () async throws -> T
    ) async -> Result<T, any Error>? {
        let (stream, continuation) = AsyncStream<Result<T, any Error>?>.makeStream()
        let work = Task {
            do { continuation.yield(.success(try await body())) } catch { continuation.yield(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            continuation.yield(nil)
        }
        var iterator = stream.makeAsyncIterator()
        let first = await iterator.next() ?? nil
        timer.cancel()
        _ = work
        return first
    }
}
