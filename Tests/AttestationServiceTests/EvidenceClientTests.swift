import AttestationClient
import AttestationService
import EnclaveCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Attestation

/// `AttestationClient.attest(_ Evidence)`: the evidence's format picks the route and its auxiliary data travels with
/// it, so SEV-SNP evidence as configfs-tsm gives it (report and certificate table) is attested as it is.
@Suite("AttestationClient posts Evidence with its auxiliary data")
struct EvidenceClientTests {
    /// A configfs-tsm certificate table with the trustee VCEK, and the Milan ASK and ARK.
    static func certificateTable() throws -> [UInt8] {
        let vcek = try Vectors.bytes("snp/trustee/test-vcek.der")
        let chain = try AMDCertificate.parseAll(Vectors.bytes("snp/trustee/milan_ask_ark_asvk.pem"))
        let ask = chain[0].derBytes
        let ark = chain[1].derBytes
        return SEVSNPCertificateTable.encode(vcek: vcek, ask: ask, ark: ark)
    }

    @Test func sevSNPEvidenceWithItsCertificateTableIsAttested() async throws {
        try await ServiceFixture.with(evidencePolicy: ServiceFixture.permissiveEvidencePolicy) { fixture in
            let app = Application(
                router: AttestationServer.router(core: fixture.core),
                configuration: .init(address: .hostname("127.0.0.1", port: 0))
            )
            try await app.test(.live) { client in
                let port = try #require(client.port)
                let service = AttestationClient(endpoint: URL(string: "http://127.0.0.1:\(port)")!)
                let report = try Vectors.bytes("snp/trustee/test-report.bin")
                let attested = AttestationEvidence(
                    provider: "sev_guest",
                    bytes: report,
                    auxiliaryData: try Self.certificateTable()
                )
                let evidence = try Evidence(attested)
                #expect(evidence.maaRoute == "SevSnpVm")
                let token = try await service.attest(evidence)
                let claims = try await service.verifier().verify(token)
                #expect(claims["x-ms-attestation-type"] == .string("sevsnpvm"))
                #expect(claims["x-ms-sevsnpvm-product"] == .string("Milan-B0"))

                // The report alone, as the raw API posts it (no certificate table): the service cannot verify it.
                let failure = await #expect(throws: AttestationClient.Failure.self) {
                    try await service.attest(type: "SevSnpVm", evidence: report)
                }
                #expect(failure?.code == "InvalidEvidence")
                // Nor with the table dropped from the evidence.
                let bare = await #expect(throws: AttestationClient.Failure.self) {
                    try await service.attest(Evidence(format: .sevSNP, bytes: report))
                }
                #expect(bare?.code == "InvalidEvidence")
                #expect(bare?.message.contains("VCEK or VLEK") == true, "\(String(describing: bare))")
            }
        }
    }
}
