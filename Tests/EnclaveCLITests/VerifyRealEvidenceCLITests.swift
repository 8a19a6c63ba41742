import EnclaveCore
import Foundation
import TestSupport
import Testing

@Suite("enclave verify: real TDX and SEV-SNP evidence")
struct VerifyRealEvidenceCLITests {
    let cli = Fixtures.product("enclave")

    @Test func tdxQuoteIsDetectedAndPrintsItsClaimsAndStatus() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/tdx/phala-dcap-qvl/tdx_quote", "--collateral",
                Vectors.root + "/tdx/phala-dcap-qvl/tdx_quote_collateral.json", "--at", "1752919234", "--json",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let claims = try printedJSON(run.output)
        #expect(claims["format"] as? String == "tdx")
        #expect(claims["tcbStatus"] as? String == "UpToDate")
        let tdx = try #require(claims["tdx"] as? [String: Any])
        for key in [
            "mrTD", "rtmr0", "rtmr3", "mrSeam", "mrSignerSeam", "mrOwner", "mrConfigID", "mrOwnerConfig",
            "tdAttributes", "xfam", "teeTCBSVN", "septVEDisable",
        ] {
            #expect(tdx[key] != nil, "missing tdx.\(key)")
        }
        #expect((tdx["mrTD"] as? String)?.hasPrefix("91eb2b44") == true)
    }

    @Test func hexQuoteAndPCCSDirectoryFailAtTheTCBLevel() throws {
        let hex = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/tdx/phala-dcap-qvl/tdx-quote.hex", "--collateral",
                Vectors.root + "/tdx/phala-dcap-qvl/tdx_quote_collateral.json", "--at", "1752919234",
            ]
        )
        #expect(hex.status != 0)
        #expect(hex.output.contains("verification failed at TCB level: no matching TCB level"), "\(hex.output)")
        // go-tdx-guest's PCS responses as a directory; its test quote without the appended test bytes.
        let quote = try Vectors.bytes("tdx/google-go-tdx-guest/tdx_prod_quote_SPR_E4.dat")
        let path = NSTemporaryDirectory() + "spr-\(UUID().uuidString).dat"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(quote.prefix(4935)).write(to: URL(fileURLWithPath: path))
        let pccs = try Fixtures.run(
            cli,
            ["verify", path, "--collateral", Vectors.root + "/tdx/google-go-tdx-guest", "--at", "1688173200"]
        )
        #expect(pccs.status != 0)
        #expect(pccs.output.contains("verification failed at TCB level"), "\(pccs.output)")
    }

    @Test func policyRefusalPrintsTheVerifiedClaimsAndNamesTheRequirement() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin", "--at", "1752919234",
                "--chain-only", "--json",
            ]
        )
        #expect(run.status != 0)
        #expect(run.output.contains("verification failed at policy (SEPT_VE_DISABLE)"), "\(run.output)")
        #expect(run.output.contains("refused by default, --allow-sept-ve accepts it"), "\(run.output)")
        let claims = try printedJSON(run.output)
        #expect(claims["verified"] as? String == "chain-only")
        let policy = try #require(claims["policy"] as? [String: Any])
        #expect(policy["accepted"] as? Bool == false)
        #expect(policy["default"] as? Bool == true && policy["flag"] as? String == "--allow-sept-ve")
        let allowed = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/azure-vtpm/trustee-az-tdx-vtpm/td-quote.bin", "--at", "1752919234",
                "--allow-sept-ve", "--chain-only",
            ]
        )
        #expect(allowed.status == 0, "\(allowed.output)")
    }

    /// Azure TDX vTPM evidence carries a TD quote but no collateral: refused, naming the flags; --chain-only accepts
    /// it (its TD lacks SEPT_VE_DISABLE, so --allow-sept-ve too) and says what was not checked.
    @Test func azureTDXVTPMEvidenceNeedsCollateralOrChainOnly() throws {
        let path = Vectors.root + "/azure-vtpm/trustee-az-tdx-vtpm/evidence-v1.json"
        let refused = try Fixtures.run(cli, ["verify", path, "--at", "1752919234"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("verification failed at collateral"), "\(refused.output)")
        #expect(refused.output.contains("--chain-only"), "\(refused.output)")
        let run = try Fixtures.run(
            cli,
            ["verify", path, "--at", "1752919234", "--chain-only", "--allow-sept-ve", "--json"]
        )
        #expect(run.status == 0, "\(run.output)")
        #expect(try printedJSON(run.output)["notChecked"] as? [String] == ["revocation", "TCB"])
        #expect(run.output.contains("revocation and TCB were not checked"), "\(run.output)")
    }

    @Test func azureVTPMEvidenceIsDetectedAndPrintsTheTPMClaims() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/azure-vtpm/trustee-az-snp-vtpm/evidence-v1.json", "--at", "1752919234",
                "--json",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let claims = try printedJSON(run.output)
        #expect(claims["format"] as? String == "sev-snp")
        let tpm = try #require(claims["tpm"] as? [String: Any])
        #expect(tpm["nonce"] as? String == Hex.encode(Array("challenge".utf8)))
        #expect((tpm["pcrs"] as? [String])?.count == 24)
    }

    @Test func sevSNPReportWithVCEKPrintsItsClaims() throws {
        let run = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/snp/trustee/test-report.bin", "--format", "sev-snp", "--vcek",
                Vectors.root + "/snp/trustee/test-vcek.der", "--at", "1752919234", "--json",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let claims = try printedJSON(run.output)
        #expect(claims["format"] as? String == "sev-snp")
        let snp = try #require(claims["sevSnp"] as? [String: Any])
        for key in [
            "measurement", "hostData", "familyID", "imageID", "guestSVN", "policy", "platformInfo", "vmpl",
            "reportedTCB", "committedTCB", "currentTCB", "chipID",
        ] {
            #expect(snp[key] != nil, "missing sevSnp.\(key)")
        }
        #expect(snp["productName"] as? String == "Milan")
        #expect((snp["reportedTCB"] as? [String: Any])?["microcode"] as? Int == 115)

        // With the chain file and a hex report too; a tampered report names the check.
        let hex = try Fixtures.run(
            cli,
            [
                "verify", Vectors.root + "/snp/virtee-sev/report_milan.hex", "--format", "sev-snp", "--vcek",
                Vectors.root + "/snp/virtee-sev/vcek_milan.der", "--chain",
                Vectors.root + "/snp/virtee-sev/cert_chain_milan",
                "--at", "1752919234",
            ]
        )
        #expect(hex.status == 0, "\(hex.output)")
        var bytes = try Vectors.bytes("snp/trustee/test-report.bin")
        bytes[42] &+= 1
        let path = NSTemporaryDirectory() + "snp-\(UUID().uuidString).bin"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let tampered = try Fixtures.run(
            cli,
            ["verify", path, "--vcek", Vectors.root + "/snp/trustee/test-vcek.der", "--at", "1752919234"]
        )
        #expect(tampered.status != 0)
        #expect(tampered.output.contains("verification failed at report signature"), "\(tampered.output)")
        let missing = try Fixtures.run(cli, ["verify", path, "--format", "sev-snp"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("--vcek"), "\(missing.output)")
    }
}
