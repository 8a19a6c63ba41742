import EnclaveCore
import EnclaveHost
import Foundation
import TestSupport
import Testing

@Suite("enclave verify")
struct VerifyCLITests {
    let cli = Fixtures.product("enclave")

    /// Evidence from the hello enclave through HelloHost --evidence, bound to `nonce`.
    func evidence(nonce: String) throws -> String {
        let signed = try Fixtures.sign("HelloEnclave")
        let out = (signed.signature as NSString).deletingLastPathComponent + "/evidence.bin"
        let run = try Fixtures.run(
            Fixtures.product("HelloHost"),
            ["--enclave", signed.image, "--signature", signed.signature, "--evidence", out, "--nonce", nonce]
        )
        #expect(run.status == 0, "\(run.output)")
        return out
    }

    @Test func simulatedEvidenceVerifiesOnlyWhenAllowedAndBound() throws {
        let path = try evidence(nonce: "c0ffee")
        let ok = try Fixtures.run(cli, ["verify", path, "--allow-simulated", "--nonce", "c0ffee", "--json"])
        #expect(ok.status == 0, "\(ok.output)")
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(ok.output.utf8)) as? [String: Any])
        for key in ["format", "debug", "simulated", "reportData", "tcbStatus", "advisoryIDs", "verified", "policy"] {
            #expect(claims[key] != nil, "missing \(key)")
        }
        let sgx = try #require(claims["sgx"] as? [String: Any])
        for key in ["mrEnclave", "mrSigner", "isvProdID", "isvSVN", "attributes", "cpuSVN"] {
            #expect(sgx[key] != nil, "missing sgx.\(key)")
        }
        #expect(claims["simulated"] as? Bool == true)
        #expect(claims["format"] as? String == "sgx")
        #expect(claims["tcbStatus"] as? String == "UpToDate")  // the local platform's collateral

        // The platform's collateral, written as PCS files and as a bundle, verifies the same evidence.
        let out = (path as NSString).deletingLastPathComponent + "/collateral"
        #expect(try Fixtures.run(cli, ["platform", "collateral", "--out", out]).status == 0)
        for source in [out, out + "/collateral.json"] {
            let run = try Fixtures.run(cli, ["verify", path, "--allow-simulated", "--collateral", source, "--json"])
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("\"tcbStatus\" : \"UpToDate\""), "\(run.output)")
        }

        let refused = try Fixtures.run(cli, ["verify", path, "--nonce", "c0ffee"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("verification failed at policy"))

        let wrongNonce = try Fixtures.run(cli, ["verify", path, "--allow-simulated", "--nonce", "c0ffef"])
        #expect(wrongNonce.status != 0)
        #expect(wrongNonce.output.contains("verification failed at nonce"))
    }

    @Test func tamperedEvidenceNamesTheCheck() throws {
        let path = try evidence(nonce: "01")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[48 + 70] ^= 1  // inside MRENCLAVE
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let run = try Fixtures.run(cli, ["verify", path, "--allow-simulated"])
        #expect(run.status != 0)
        #expect(run.output.contains("verification failed at quote signature"))
    }

    @Test func realQuoteVerifiesToIntelsRoot() throws {
        let quote = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote"
        // Without collateral a real quote is refused, naming the way out.
        let bare = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277"])
        #expect(bare.status != 0)
        #expect(bare.output.contains("verification failed at collateral"), "\(bare.output)")
        #expect(bare.output.contains("--collateral") && bare.output.contains("--chain-only"), "\(bare.output)")
        #expect(!bare.output.contains("verified: "), "\(bare.output)")  // no claims printed
        // --chain-only: accepted, and it says what was not checked.
        let run = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277", "--chain-only", "--json"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("revocation and TCB were not checked"), "\(run.output)")
        let claims = try printedJSON(run.output)
        #expect(claims["simulated"] as? Bool == false)
        #expect(claims["verified"] as? String == "chain-only")
        #expect(claims["notChecked"] as? [String] == ["revocation", "TCB"])
        #expect(claims["tcbStatus"] == nil)
        let flat = try Fixtures.run(cli, ["verify", quote, "--at", "1752919277", "--chain-only"])
        #expect(flat.status == 0, "\(flat.output)")
        #expect(flat.output.contains("verified: chain-only"), "\(flat.output)")
        #expect(flat.output.contains("warning: chain-only verification: revocation and TCB were not checked"))

        let bundle = Vectors.root + "/sgx/phala-dcap-qvl/sgx_quote_collateral.json"
        let full = try Fixtures.run(cli, ["verify", quote, "--collateral", bundle, "--at", "1752919277", "--json"])
        #expect(full.status == 0, "\(full.output)")
        let status = try #require(try JSONSerialization.jsonObject(with: Data(full.output.utf8)) as? [String: Any])
        #expect(status["tcbStatus"] as? String == "ConfigurationAndSWHardeningNeeded")
        #expect(status["verified"] as? Bool == true && status["notChecked"] == nil)
        #expect(status["advisoryIDs"] as? [String] == ["INTEL-SA-00289", "INTEL-SA-00615"])
        let late = try Fixtures.run(cli, ["verify", quote, "--collateral", bundle, "--at", "1752919278"])
        #expect(late.status != 0)
        #expect(late.output.contains("verification failed at collateral validity"))
    }

    /// An out-of-date platform is refused by default, naming the default and the flag; the flag accepts it. (A
    /// private simulated platform whose root is given as a trust anchor, and whose collateral states a newer TCB.)
    @Test func outOfDateIsRefusedByDefaultAndAcceptedWithItsFlag() throws {
        let directory = try Fixtures.temporaryDirectory()
        let platform = try SimulatedPlatform.open(directory: directory + "/platform")
        let identity = try Fixtures.standInIdentity()
        try Data(platform.quote(for: identity, reportData: [UInt8](repeating: 0, count: 64)))
            .write(to: URL(fileURLWithPath: directory + "/quote.bin"))
        try Data(platform.rootCertificatePEM().utf8).write(to: URL(fileURLWithPath: directory + "/root.pem"))
        var newer = try platform.platformInfo().cpuSVN.map(Int.init)
        newer[0] += 1
        try platform.setTCB(upToDateComponents: newer)
        try Data(platform.collateralJSON(issued: Date().addingTimeInterval(-60)))
            .write(to: URL(fileURLWithPath: directory + "/collateral.json"))
        let arguments = [
            "verify", directory + "/quote.bin", "--collateral", directory + "/collateral.json", "--trust-anchor",
            directory + "/root.pem",
        ]
        let refused = try Fixtures.run(cli, arguments + ["--json"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("verification failed at policy (TCB status)"), "\(refused.output)")
        #expect(refused.output.contains("OutOfDate is not accepted"), "\(refused.output)")
        #expect(refused.output.contains("refused by default, --allow-out-of-date accepts it"), "\(refused.output)")
        let policy = try #require(try printedJSON(refused.output)["policy"] as? [String: Any])
        #expect(policy["requirement"] as? String == "TCB status" && policy["flag"] as? String == "--allow-out-of-date")
        let accepted = try Fixtures.run(cli, arguments + ["--allow-out-of-date", "--json"])
        #expect(accepted.status == 0, "\(accepted.output)")
        #expect(try printedJSON(accepted.output)["tcbStatus"] as? String == "OutOfDate")

        // SEV-SNP: VMPL 1 is refused by default, --max-vmpl 1 accepts it.
        let vlek = [
            "verify", Vectors.root + "/snp/trustee/test-vlek-report.bin", "--format", "sev-snp", "--vcek",
            Vectors.root + "/snp/trustee/test-vlek.der", "--at", "1752919234",
        ]
        let vmpl = try Fixtures.run(cli, vlek)
        #expect(vmpl.status != 0)
        #expect(
            vmpl.output.contains("verification failed at policy (VMPL)")
                && vmpl.output.contains("refused by default, --max-vmpl N accepts it"),
            "\(vmpl.output)"
        )
        #expect(try Fixtures.run(cli, vlek + ["--max-vmpl", "1"]).status == 0)
    }
}
