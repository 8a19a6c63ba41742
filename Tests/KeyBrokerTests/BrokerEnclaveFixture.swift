import Attestation
import AttestationAPI
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import KeyBrokerInterface
import SwiftASN1
import TestSupport
import X509

/// The broker enclave signed and loaded on a simulated platform of the test's choosing, and an attestation service
/// (in process) that trusts one platform's simulated root.
enum BrokerEnclaveFixture {
    /// A fresh simulated platform in its own directory.
    static func platform() throws -> SimulatedPlatform {
        try SimulatedPlatform.open(directory: Fixtures.temporaryDirectory() + "/platform")
    }

    /// `KeyBrokerEnclave` signed with `key` at `securityVersion`.
    static func sign(
        key: P256.Signing.PrivateKey,
        securityVersion: UInt16,
        productID: UInt16 = 1,
        debug: Bool = false
    ) throws -> Fixtures.Signed {
        try Fixtures.sign(
            "KeyBrokerEnclave",
            config: EnclaveConfig(productID: productID, securityVersion: securityVersion, debug: debug),
            key: key
        )
    }

    static func load(_ signed: Fixtures.Signed, on platform: SimulatedPlatform) async throws -> Enclave {
        var options = Enclave.Options()
        options.platform = platform
        options.evidenceSource = .simulated
        options.signaturePath = signed.signature
        options.debug = signed.identity.isDebug
        options.startTimeout = .seconds(120)  // generous: a loaded CI machine starts enclaves slowly
        return try await Enclave.load(path: signed.image, options: options)
    }

    /// An attestation service trusting `platform`'s simulated root (debug enclaves admitted, so that the broker's
    /// own debug check is what refuses them).
    static func service(trusting platform: SimulatedPlatform, issuer: String) async throws -> AttestationServiceCore {
        var configuration = AttestationServiceCore.Configuration(issuer: issuer)
        configuration.allowSimulated = true
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = { time in
            try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
        }
        var policy = EvidencePolicy()
        policy.allowDebug = true
        configuration.evidencePolicy = policy
        let store = try await SQLiteServiceStore.open(directory: Fixtures.temporaryDirectory() + "/data")
        return try await AttestationServiceCore(configuration: configuration, store: store)
    }

    /// Runs `body` with a service trusting `platform`, then closes its store (whatever `body` did).
    static func withService<T>(
        trusting platform: SimulatedPlatform,
        issuer: String,
        _ body: (AttestationServiceCore) async throws -> T
    ) async throws -> T {
        let service = try await Self.service(trusting: platform, issuer: issuer)
        do {
            let result = try await body(service)
            try? await service.store.close()
            return result
        } catch {
            try? await service.store.close()
            throw error
        }
    }

    /// The service as an authority the broker pins.
    static func authority(_ service: AttestationServiceCore, url: String) throws -> BrokerAuthority {
        let certificate = try Certificate(pemEncoded: service.signer.certificatePEM)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return BrokerAuthority(url: url, certificates: [serializer.serializedBytes])
    }

    /// A token for simulated evidence with JSON runtime data.
    static func token(
        _ service: AttestationServiceCore,
        evidence: AttestationEvidence,
        runtimeData: [UInt8]
    ) async throws -> String {
        try await service.attest(
            type: .simulatedEnclave,
            request: AttestationServiceCore.AttestRequest(evidence: evidence.bytes, runtimeData: (runtimeData, true))
        )
    }
}
