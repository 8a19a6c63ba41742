import AttestationService
import Crypto
import EnclaveCore
import Foundation
import JWTKit
import TestSupport
import Testing
import X509

/// Microsoft's own Azure Attestation client (`azure-security-attestation` 1.0.0, Python) against
/// `enclave serve attestation` over HTTPS, unchanged and with token validation on: `Scripts/maa-client-check.py`
/// makes every call and prints one JSON result per call; this suite asserts each, including the service's refusal
/// of the attacks (an untrusted signer, a tampered policy, a replayed one, one moved to another type, removing the
/// last policy management certificate).
///
/// The client is installed once in a virtual environment under `.build/maa-venv` (`pip install
/// azure-security-attestation==1.0.0 six`); without it the suite is skipped, naming why, and fails instead when
/// `ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1` (`.ci/run` installs it).
@Suite("Microsoft's Azure Attestation client against enclave serve attestation", .serialized)
struct MicrosoftClientTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = packageRoot + "/Scripts/maa-client-check.py"
    static let venv = packageRoot + "/.build/maa-venv"
    static let check = ["-c", "import azure.security.attestation, six"]
    /// The system's python3 when it has the client (`.ci/run` installs it there), else the venv's.
    static let python: String = {
        let system = try? ChildProcess.run(
            "/usr/bin/env",
            ["python3", "-c", "import azure.security.attestation, six, sys; print(sys.executable)"]
        )
        if let system, system.status == 0 {
            return system.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return venv + "/bin/python"
    }()

    /// Nil when the client is importable (installing it into the venv first if needed), else why not.
    static let clientMissing: String? = {
        if (try? ChildProcess.run(python, check))?.status == 0 { return nil }
        _ = try? ChildProcess.run("/usr/bin/env", ["python3", "-m", "venv", venv])
        let install = try? ChildProcess.run(
            python,
            [
                "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "azure-security-attestation==1.0.0",
                "six",
            ]
        )
        if (try? ChildProcess.run(python, check))?.status == 0 { return nil }
        return "azure-security-attestation could not be installed into \(venv): "
            + String((install?.output ?? "python3 -m venv failed").suffix(300))
    }()

    static var independentRequired: Bool {
        ProcessInfo.processInfo.environment["ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS"] == "1"
    }

    /// One call's outcome as the script printed it.
    struct Outcome {
        var ok: Bool
        var status: Int?
        var code: String?
        var text: String
    }

    /// Runs the script's `phase` and returns its outcomes by call name.
    static func run(_ phase: String, _ arguments: [String]) throws -> [String: Outcome] {
        let result = try ChildProcess.run(python, [script, phase] + arguments)
        var outcomes: [String: Outcome] = [:]
        for line in result.output.split(separator: "\n") where line.hasPrefix("{") {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "not JSON: \(line)"
            )
            let call = try #require(object["call"] as? String)
            outcomes[call] = Outcome(
                ok: object["ok"] as? Bool == true,
                status: object["status"] as? Int,
                code: object["code"] as? String,
                text: String(line)
            )
        }
        #expect(result.status == 0, "\(phase) exited \(result.status): \(result.output.suffix(2000))")
        return outcomes
    }

    /// The service with the SGX vector's quote accepted without collateral (its Intel collateral has expired).
    static func serve(_ data: String, _ extra: [String] = []) throws -> (ServedProcess, endpoint: String, ca: String) {
        let server = try ServedProcess(
            ["--data-dir", data, "--allow-chain-only", "--allow-debug", "--accept-out-of-date"] + extra
        )
        return (server, "https://127.0.0.1:" + server.port, data + "/tls/certificate.pem")
    }

    static func expectSucceeded(_ outcomes: [String: Outcome], _ calls: [String]) {
        for call in calls {
            #expect(outcomes[call]?.ok == true, "\(call): \(outcomes[call]?.text ?? "not run")")
        }
    }

    static func expectRefused(_ outcomes: [String: Outcome], _ call: String, status: Int, code: String) {
        let outcome = outcomes[call]
        #expect(outcome?.ok == false && outcome?.status == status, "\(call): \(outcome?.text ?? "not run")")
        #expect(outcome?.code == code, "\(call): \(outcome?.text ?? "not run")")
    }

    func requireClient() -> Bool {
        guard let missing = Self.clientMissing else { return true }
        if Self.independentRequired { Issue.record("ENCLAVEKIT_REQUIRE_INDEPENDENT_VERIFIERS=1 but \(missing)") }
        return false
    }

    /// Without policy signers: metadata, unsigned policies with the administrator token, SGX and Open Enclave
    /// attestation with and without a draft policy (`x-ms-policy-hash` as MAA computes it), and a wrong token
    /// refused.
    @Test(
        .enabled(if: clientMissing == nil || independentRequired, "Microsoft's client missing: \(clientMissing ?? "")")
    )
    func unsignedPoliciesAndAttestation() throws {
        guard requireClient() else { return }
        let data = NSTemporaryDirectory() + "maa-aad-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, endpoint, ca) = try Self.serve(data)
        defer { server.process.terminate() }
        let outcomes = try Self.run(
            "aad",
            [
                "--endpoint", endpoint, "--ca", ca, "--admin-token", data + "/admin-token",
                "--sgx-quote", Vectors.path("sgx/phala-dcap-qvl/sgx_quote"),
            ]
        )
        Self.expectSucceeded(
            outcomes,
            [
                "get_open_id_metadata", "get_signing_certificates", "get_policy_default", "set_policy_unsigned",
                "get_policy_unsigned", "attest_sgx_enclave", "attest_sgx_enclave_draft", "attest_open_enclave",
                "attest_open_enclave_draft", "reset_policy_unsigned", "get_policy_management_certificates_none",
            ]
        )
        Self.expectRefused(outcomes, "set_policy_wrong_admin_token", status: 401, code: "AdminCredentialInvalid")
    }

    /// With an RSA policy signer: signed policies, policy management certificates, and every attack refused by the
    /// service (the client does not check what it sends).
    @Test(
        .enabled(if: clientMissing == nil || independentRequired, "Microsoft's client missing: \(clientMissing ?? "")")
    )
    func signedPoliciesAndCertificates() async throws {
        guard requireClient() else { return }
        let data = NSTemporaryDirectory() + "maa-isolated-" + UUID().uuidString
        let keys = data + "-keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: keys)
        }
        #expect(try Self.run("keys", ["--out", keys])["keys"]?.ok == true)
        let (server, endpoint, ca) = try Self.serve(data, ["--policy-signer", keys + "/signer-cert.pem"])
        var arguments = [
            "--endpoint", endpoint, "--ca", ca, "--sgx-quote", Vectors.path("sgx/phala-dcap-qvl/sgx_quote"),
        ]
        for name in ["signer", "second", "stranger"] {
            arguments += ["--\(name)-key", "\(keys)/\(name)-key.pem", "--\(name)-cert", "\(keys)/\(name)-cert.pem"]
        }
        let outcomes = try Self.run("isolated", arguments)
        server.process.terminate()
        server.process.waitUntilExit()
        Self.expectSucceeded(
            outcomes,
            [
                "get_open_id_metadata", "get_signing_certificates", "get_policy_management_certificates",
                "set_policy_signed", "get_policy_signed", "attest_sgx_enclave", "attest_sgx_enclave_draft",
                "attest_open_enclave", "attest_open_enclave_draft", "get_policy_after_attacks",
                "get_policy_other_type_after_attacks", "add_policy_management_certificate",
                "get_policy_management_certificates_two", "remove_policy_management_certificate",
                "reset_policy_signed", "get_policy_management_certificates_after",
            ]
        )
        Self.expectRefused(outcomes, "set_policy_untrusted_signer", status: 401, code: "PolicySignerUnknown")
        Self.expectRefused(outcomes, "set_policy_tampered", status: 401, code: "PolicySignatureInvalid")
        Self.expectRefused(outcomes, "set_policy_replayed", status: 403, code: "PolicyRequestReplayed")
        Self.expectRefused(outcomes, "set_policy_moved_to_another_type", status: 403, code: "PolicyRequestReplayed")
        Self.expectRefused(
            outcomes,
            "add_policy_management_certificate_untrusted",
            status: 401,
            code: "PolicySignerUnknown"
        )
        Self.expectRefused(outcomes, "set_policy_removed_signer", status: 401, code: "PolicySignerUnknown")
        Self.expectRefused(
            outcomes,
            "remove_policy_management_certificate_last",
            status: 409,
            code: "LastPolicySignerRemoval"
        )

        // The signer set persists: restarted with the removed signer still on the command line, the store's set
        // (only the second certificate) is in force; the removed signer stays removed.
        let (again, _, _) = try Self.serve(data, ["--policy-signer", keys + "/signer-cert.pem"])
        defer { again.process.terminate() }
        let store = try #require(await Self.storeSigners(data: data, again: again))
        let second = try Certificate(pemEncoded: String(contentsOfFile: keys + "/second-cert.pem", encoding: .utf8))
        #expect(store == [second])
    }

    /// The policy management certificates a running service lists (`GET /certificates`, read from its token).
    static func storeSigners(data: String, again: ServedProcess) async -> [Certificate]? {
        let ca = data + "/tls/certificate.pem"
        guard
            let result = try? ChildProcess.run(
                "/usr/bin/env",
                ["curl", "-s", "--cacert", ca, "https://127.0.0.1:\(again.port)/certificates?api-version=2020-10-01"]
            ),
            let body = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
            let token = body["token"] as? String,
            let payload = Base64URL.decode(String(token.split(separator: ".")[1])),
            let claims = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any],
            let set = claims["x-ms-policy-certificates"] as? [String: Any], let keys = set["keys"] as? [[String: Any]]
        else { return nil }
        return keys.compactMap { key in
            (key["x5c"] as? [String])?.first.flatMap { Data(base64Encoded: $0) }.flatMap {
                try? Certificate(derEncoded: Array($0))
            }
        }
    }

    /// Why the service verifies policy JWS itself rather than with jwt-kit's X5CVerifier: X5CVerifier refuses a
    /// self-signed end-entity certificate as the signer ("not marked as a CA"), which is what MAA policy management
    /// certificates are, and cannot read the form Microsoft's clients send (`jwk.x5c`, `alg: "RSA256"`).
    @Test func jwtKitX5CVerifierRefusesMAAPolicySigners() async throws {
        let signer = try TrustHardeningTests.Signer()
        let token = try signer.jws(payload: "{\"AttestationPolicy\":\"\"}")
        let verifier = try X5CVerifier(rootCertificates: [signer.certificate])
        let refused = await #expect(throws: JWTError.self) {
            _ = try await verifier.verifyJWS(token, as: Payload.self)
        }
        #expect(refused?.errorType == .invalidX5CChain, "\(String(describing: refused))")
        #expect(refused?.reason?.contains("not marked as a CA") == true, "\(String(describing: refused))")
        // Microsoft's form: the certificate in jwk.x5c, alg RSA256.
        let parts = token.split(separator: ".")
        let header = try #require(Base64URL.decode(String(parts[0])))
        let moved = String(decoding: header, as: UTF8.self).replacingOccurrences(
            of: "\"x5c\"",
            with: "\"jwk\":{\"x5c\""
        )
        .replacingOccurrences(of: "]}", with: "]}}").replacingOccurrences(of: "ES256", with: "RSA256")
        let microsoft = Base64URL.encode(Array(moved.utf8)) + "." + parts[1] + "." + parts[2]
        let unreadable = await #expect(throws: JWTError.self) {
            _ = try await verifier.verifyJWS(microsoft, as: Payload.self)
        }
        #expect(unreadable?.errorType == .unsupportedAlgorithm, "\(String(describing: unreadable))")
    }

    struct Payload: JWTPayload {
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}
