import ArgumentParser
import Attestation
import AttestationClient
import AttestationService
import EnclaveHost
import Foundation
import HelloInterface
import Hummingbird
import Logging
import X509

extension HelloHost {
    /// The whole remote-attestation flow: a service (this process's own unless `--service`), a challenge, an
    /// ephemeral key made inside the enclave and bound with the challenge into its evidence, a token, and the token
    /// checked as a relying party would.
    func attestFlow(_ instance: Enclave) async throws {
        var server: AttestationServer.Running?
        var store: SQLiteServiceStore?
        let endpoint: URL
        if let service {
            guard let url = URL(string: service) else { throw ValidationError("--service is not a URL") }
            endpoint = url
        } else {
            let directory = dataDir ?? NSTemporaryDirectory() + "enclavekit-hello-attestation"
            let opened = try await SQLiteServiceStore.open(directory: directory)
            store = opened
            let platform = try SimulatedPlatform.open()
            var configuration = AttestationServiceCore.Configuration(issuer: "http://127.0.0.1")
            configuration.allowSimulated = true
            configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
            configuration.simulatedCollateral = { time in
                try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
            }
            var logger = Logger(label: "enclavekit.attestation")
            logger.logLevel = .warning
            let core = try await AttestationServiceCore(configuration: configuration, store: opened, logger: logger)
            let running = try await AttestationServer.start(core: core, logger: logger)
            server = running
            endpoint = URL(string: "http://127.0.0.1:\(running.port)")!
            print("==> attestation service listening on \(endpoint.absoluteString) (SQLite in \(directory))")
        }
        do {
            try await attestWithService(at: endpoint, instance)
        } catch {
            await server?.stop()
            try? await store?.close()
            throw error
        }
        await server?.stop()
        try await store?.close()
    }

    /// What the service will check, checked here first with the same verifier and fail-closed policy (simulated
    /// evidence accepted): this machine's simulated platform is the root and supplies the collateral.
    private func verifyLocally(_ evidence: Evidence) async throws {
        guard evidence.format == .simulatedSGX else { return }
        let platform = try SimulatedPlatform.open()
        var policy = EvidencePolicy.failClosed
        policy.allowSimulated = true
        let verifier = EvidenceVerifier(
            anchors: .init(intel: [
                .init(certificate: try Certificate(pemEncoded: platform.rootCertificatePEM()), simulated: true)
            ]),
            collateral: .init { _, time throws(AttestationError) in
                do {
                    return try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
                } catch {
                    throw AttestationError(error)
                }
            },
            policy: policy
        )
        let claims = try await verifier.verify(evidence, at: Date())
        print(
            "==> verified locally: MRENCLAVE \(claims.sgx?.mrEnclave.hex.prefix(16) ?? "-")…, TCB status "
                + (claims.tcbStatus?.rawValue ?? "-")
        )
    }

    private func attestWithService(at endpoint: URL, _ instance: Enclave) async throws {
        let client = AttestationClient(endpoint: endpoint)
        let challenge = try await client.challenge()
        print("==> challenge \(challenge.nonce) (expires \(challenge.expires))")
        let attested = try await instance.call(AttestKey.self, challenge.nonce)
        print(
            "==> enclave made an ephemeral key and \(attested.evidence.bytes.count) bytes of \(attested.evidence.provider) evidence"
        )
        print("    runtime data: \(String(decoding: attested.runtimeData, as: UTF8.self))")
        // The evidence's format names its route (a TD's evidence goes to TdxVm, an SEV-SNP guest's with its
        // certificate table to SevSnpVm).
        let evidence = try Evidence(attested.evidence)
        try await verifyLocally(evidence)
        let token = try await client.attest(evidence, runtimeData: .init(data: attested.runtimeData, dataType: .json))
        print("==> token: \(token.prefix(48))… (\(token.count) characters)")

        let verifier = try await client.verifier()
        let claims = try await verifier.verify(token, challenge: challenge.nonce)
        print("==> verified against \(endpoint.absoluteString)/certs as issuer \(verifier.issuer); claims:")
        for name in [
            "x-ms-attestation-type", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-product-id", "x-ms-sgx-svn",
            "x-ms-sgx-is-debuggable", "x-enclavekit-tcb-status", "x-enclavekit-simulated", "x-enclavekit-challenge",
        ] {
            print("    \(name): \(claims[name]?.description ?? "-")")
        }
        if case .object(let runtime)? = claims["x-ms-runtime"], case .array(let keys)? = runtime["keys"] {
            print("    x-ms-runtime.keys: \(keys.map(\.description).joined(separator: ", "))")
        }
        // Freshness is the relying party's check: the token must carry the challenge it issued for this exchange.
        guard claims["x-enclavekit-challenge"]?.stringValue == challenge.nonce else {
            throw ValidationError("the token does not carry this exchange's challenge: it is not fresh")
        }
        print("==> the token carries this exchange's challenge: it is fresh")
        let expected = instance.identity.uniqueID.hex
        guard claims["x-ms-sgx-mrenclave"]?.stringValue == expected else {
            throw ValidationError("the token's MRENCLAVE is not this enclave's")
        }
        print("==> the token names this enclave (\(expected.prefix(16))…); its key is the enclave's")

        // Freshness: the same evidence, replayed, is refused because its challenge is spent.
        do {
            _ = try await client.attest(evidence, runtimeData: .init(data: attested.runtimeData, dataType: .json))
            throw ValidationError("a replayed challenge was accepted")
        } catch let failure as AttestationClient.Failure {
            print("==> replay refused: \(failure.code): \(failure.message)")
        }
    }
}
