import Foundation
import TestSupport
import Testing

@Suite("Main job: remote attestation of the hello enclave")
struct HelloAttestationTests {
    /// HelloHost --attest: a service in process, a challenge, an enclave-made key bound into the evidence, a token
    /// verified as a relying party would, and the replayed evidence refused.
    @Test func helloHostAttestsThroughTheService() throws {
        let signed = try Fixtures.sign("HelloEnclave")
        let data = (signed.signature as NSString).deletingLastPathComponent + "/attestation"
        let run = try Fixtures.run(
            Fixtures.product("HelloHost"),
            ["--enclave", signed.image, "--signature", signed.signature, "--attest", "--data-dir", data]
        )
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("x-ms-sgx-mrenclave: \(signed.identity.uniqueID.hex)"), "\(run.output)")
        #expect(run.output.contains("x-enclavekit-challenge: "), "\(run.output)")
        #expect(run.output.contains("x-ms-runtime.keys: {\"crv\":\"P-256\""), "\(run.output)")
        #expect(run.output.contains("replay refused: InvalidChallenge"), "\(run.output)")
        // The sample checks locally with the service's verifier first.
        #expect(run.output.contains("==> verified locally: MRENCLAVE"), "\(run.output)")
    }
}
