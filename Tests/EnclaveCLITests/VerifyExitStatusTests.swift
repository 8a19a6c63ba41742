import Foundation
import TestSupport
import Testing

/// `enclave verify` exits with ``Attestation/AttestationError/exitCode``: 1 evidence that does not verify, 2 a policy
/// refusal of evidence that verified, 3 no collateral to verify with. One mapping, the same the service's codes use.
@Suite("enclave verify: exit statuses")
struct VerifyExitStatusTests {
    let cli = Fixtures.product("enclave")
    let quote = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote"
    let bundle = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote_collateral.json"

    @Test func eachRefusalHasItsStatus() throws {
        let accepted = try Fixtures.run(cli, ["verify", quote, "--collateral", bundle, "--at", "1752919277"])
        #expect(accepted.status == 0, "\(accepted.output)")

        let late = try Fixtures.run(cli, ["verify", quote, "--collateral", bundle, "--at", "1752919278"])
        #expect(late.status == 1, "\(late.output)")
        #expect(late.output.contains("verification failed at collateral validity"), "\(late.output)")

        let chainOnly = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277", "--chain-only", "--allow-debug"])
        #expect(chainOnly.status == 0, "\(chainOnly.output)")

        let missing = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277"])
        #expect(missing.status == 3, "\(missing.output)")
        #expect(missing.output.contains("verification failed at collateral"), "\(missing.output)")

        let vmpl = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/snp/trustee/test-vlek-report.bin", "--format", "sev-snp", "--vcek",
                Vectors.root + "/snp/trustee/test-vlek.der", "--at", "1752919234",
            ]
        )
        #expect(vmpl.status == 2, "\(vmpl.output)")
        #expect(vmpl.output.contains("verification failed at policy (VMPL)"), "\(vmpl.output)")
    }
}
