import Attestation
import AttestationClient
import AttestationService
import Crypto
import EnclaveCore
import EnclaveHost
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import X509

/// A service on a fresh SQLite store and simulated platform, and evidence from that platform.
struct ServiceFixture {
    let directory: String
    let platform: SimulatedPlatform
    let core: AttestationServiceCore
    let identity: EnclaveIdentity

    /// The administrator token of every fixture (policy changes without signers need it).
    static let adminToken = "fixture-admin-token-0123456789"
    /// The header that carries it.
    static var admin: HTTPFields { [.authorization: "Bearer " + adminToken] }

    /// Evidence requirements loose enough for the real vectors (debug SGX, TDX without SEPT_VE_DISABLE, no TCB
    /// status without collateral); the service's default is ``EvidencePolicy``'s, which refuses them.
    static var permissiveEvidencePolicy: EvidencePolicy {
        var policy = EvidencePolicy()
        policy.allowDebug = true
        policy.requireSEPTVEDisable = false
        policy.acceptedTCBStatuses = Set(TCBStatus.allCases)  // Revoked stays refused whatever the set
        policy.allowMissingTCBStatus = true
        return policy
    }

    static func make(
        allowSimulated: Bool = true,
        policySigners: [Certificate] = [],
        issuer: String = "http://attestation.test",
        evidencePolicy: EvidencePolicy = EvidencePolicy(),
        configure: (inout AttestationServiceCore.Configuration) -> Void = { _ in }
    ) async throws -> ServiceFixture {
        let directory = try Fixtures.temporaryDirectory("service")
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        var configuration = AttestationServiceCore.Configuration(issuer: issuer)
        configuration.allowSimulated = allowSimulated
        configuration.simulatedAnchor = try Certificate(pemEncoded: platform.rootCertificatePEM())
        configuration.simulatedCollateral = { time in
            try Collateral(dcapQVLJSON: platform.collateralJSON(issued: time.addingTimeInterval(-60)))
        }
        configuration.policySigners = policySigners
        configuration.adminCredential = AdminCredential(token: adminToken)
        configuration.evidencePolicy = evidencePolicy
        configure(&configuration)
        let store = try await SQLiteServiceStore.open(directory: directory + "/data")
        let core = try await AttestationServiceCore(configuration: configuration, store: store)
        let identity = EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 0xAA, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: 0xBB, count: 32)),
            productID: 9,
            securityVersion: 4,
            attributes: []
        )
        return ServiceFixture(directory: directory, platform: platform, core: core, identity: identity)
    }

    /// A simulated quote whose report data starts with SHA-256 of `runtimeData`.
    func evidence(binding runtimeData: [UInt8]) throws -> [UInt8] {
        try platform.quote(
            for: identity,
            reportData: Array(SHA256.hash(data: runtimeData)) + [UInt8](repeating: 0, count: 32)
        )
    }

    /// An attestation request body.
    static func body(evidence: [UInt8], runtimeData: [UInt8]?, json: Bool = false, extra: String = "") -> String {
        var text = "{\"quote\":\"\(Base64URL.encode(evidence))\""
        if let runtimeData {
            text +=
                ",\"runtimeData\":{\"data\":\"\(Base64URL.encode(runtimeData))\",\"dataType\":\"\(json ? "JSON" : "Binary")\"}"
        }
        return text + extra + "}"
    }

    var application: some ApplicationProtocol {
        Application(router: AttestationServer.router(core: core, maxBodySize: 256 << 10))
    }

    /// Run `body` with a fresh fixture, then close the store and remove the files.
    static func with(
        allowSimulated: Bool = true,
        policySigners: [Certificate] = [],
        evidencePolicy: EvidencePolicy = EvidencePolicy(),
        configure: (inout AttestationServiceCore.Configuration) -> Void = { _ in },
        _ body: (ServiceFixture) async throws -> Void
    ) async throws {
        let fixture = try await make(
            allowSimulated: allowSimulated,
            policySigners: policySigners,
            evidencePolicy: evidencePolicy,
            configure: configure
        )
        do {
            try await body(fixture)
        } catch {
            try? await fixture.core.store.close()
            try? FileManager.default.removeItem(atPath: fixture.directory)
            throw error
        }
        try? await fixture.core.store.close()
        try? FileManager.default.removeItem(atPath: fixture.directory)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}
