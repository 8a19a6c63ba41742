import EnclaveCore
import Foundation
import TestSupport
import Testing

@testable import Attestation

/// Azure confidential VM evidence (paravisor HCL report, vTPM quote, VCEK or TD quote) from the Confidential
/// Containers project, with the outcomes Tests/Vectors/MANIFEST.md states.
@Suite("Azure vTPM evidence")
struct AzureVTPMTests {
    static let time = Date(timeIntervalSince1970: 1_752_919_234)
    static let snp = "azure-vtpm/trustee-az-snp-vtpm/"
    static let tdx = "azure-vtpm/trustee-az-tdx-vtpm/"

    /// (document, nonce the TPM quote carries, PCR 0's first and last bytes)
    @Test(arguments: [
        ("evidence-v0.json", "6368616c6c656e6765", "e15c4479", "dced"),
        ("evidence-v1.json", "6368616c6c656e6765", "e15c4479", "dced"),
        ("evidence-v2.json", "982f5c6e", "84275b2f", "a6a7"),
        ("evidence-genoa.json", "0218488b", "afd689d0", "3338"),
    ])
    func snpEvidenceVerifies(_ file: String, _ nonce: String, _ pcrStart: String, _ pcrEnd: String) async throws {
        let evidence = try AzureVTPMEvidence(json: Vectors.bytes(Self.snp + file))
        let claims = try await evidence.verify(at: Self.time)
        #expect(claims.format == "sev-snp")
        let tpm = try #require(claims.tpm)
        #expect(Hex.encode(tpm.nonce).hasPrefix(nonce))
        #expect(Hex.encode(tpm.pcrs[0]).hasPrefix(pcrStart) && Hex.encode(tpm.pcrs[0]).hasSuffix(pcrEnd))
    }

    @Test func v2NonceEndsAsStated() throws {
        let evidence = try AzureVTPMEvidence(json: Vectors.bytes(Self.snp + "evidence-v2.json"))
        #expect(Hex.encode(evidence.tpmQuote.nonce).hasSuffix("19ef"))
        #expect(Hex.encode(evidence.tpmQuote.nonce) != Hex.encode(Array("123abc".utf8)))  // trustee's mismatch case
    }

    /// The TD quote comes without Intel collateral: refused (fail closed) unless a chain-only verification is asked
    /// for, whose claims say that revocation and TCB were not checked.
    @Test func tdxEvidenceNeedsCollateralOrAnExplicitChainOnlyVerification() async throws {
        for file in ["evidence-v0.json", "evidence-v1.json"] {
            let evidence = try AzureVTPMEvidence(json: Vectors.bytes(Self.tdx + file))
            let refused = await #expect(throws: AzureVTPMEvidence.VerificationFailure.self) {
                try await evidence.verify(at: Self.time)
            }
            #expect(refused?.check == .collateralUnavailable)
            let claims = try await evidence.verify(at: Self.time, tdxChainOnly: true)
            #expect(claims.format == "tdx")
            #expect(claims.notChecked == Claims.chainOnlyNotChecked)
            let tpm = try #require(claims.tpm)
            #expect(tpm.nonce == Array("challenge".utf8))
            let pcr0 = Hex.encode(tpm.pcrs[0])
            #expect(pcr0.hasPrefix("782b20b1"))
        }
    }

    /// The standalone TPM quote files: signature by the HCL report's key (RSA PKCS #1 v1.5, SHA-256), nonce, PCRs.
    @Test(arguments: [snp, tdx])
    func tpmQuoteFilesVerifyAndTamperingFails(_ folder: String) throws {
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(Vectors.bytes(folder + "tpm-quote-v1.json"))) as? [String: Any]
        )
        let messageText = try #require(json["message"] as? String)
        let signatureText = try #require(json["signature"] as? String)
        let message = try #require(Hex.decode(messageText))
        let signature = try #require(Hex.decode(signatureText))
        let pcrs = try #require((json["pcrs"] as? [String])?.compactMap(Hex.decode))
        let key = try AzureHCLReport(bytes: Vectors.bytes(folder + "hcl-report.bin")).attestationKey()
        let quote = try TPMQuote(message: message, signature: signature, pcrs: pcrs)
        try quote.verify(attestationKey: key)
        #expect(quote.nonce == Array("challenge".utf8))
        #expect(quote.selectedPCRs == Array(0..<24))
        var badSignature = signature
        badSignature[0] ^= 1
        let signatureFailure = #expect(throws: TPMQuote.Failure.self) {
            try TPMQuote(message: message, signature: badSignature, pcrs: pcrs).verify(attestationKey: key)
        }
        #expect(
            signatureFailure.map { $0.reason.contains("not signed by the attestation key") } == true,
            "\(String(describing: signatureFailure))"
        )
        var badPCR = pcrs
        badPCR[0][0] ^= 1
        let pcrFailure = #expect(throws: TPMQuote.Failure.self) {
            try TPMQuote(message: message, signature: signature, pcrs: badPCR).verify(attestationKey: key)
        }
        #expect(pcrFailure.map { $0.reason.contains("PCR") } == true)
        for length in stride(from: 0, to: message.count, by: 5) {
            expectEnclaveError(.malformedInput) {
                try TPMQuote(message: Array(message.prefix(length)), signature: signature, pcrs: pcrs)
            }
        }
        expectEnclaveError(.malformedInput) { try TPMQuote(message: message + [0], signature: signature, pcrs: pcrs) }
    }

    /// Each layer of the chain named when it breaks: the runtime data (its key), the TPM quote, the hardware.
    @Test func tamperedLayersFailByName() async throws {
        let original = try Vectors.bytes(Self.snp + "evidence-v1.json")
        let text = String(decoding: original, as: UTF8.self)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(original)) as? [String: Any])
        let quote = try #require(document["tpm_quote"] as? [String: Any])
        let signature = try #require(quote["signature"] as? String)
        var flipped = Array(signature)
        flipped[10] = flipped[10] == "0" ? "1" : "0"
        let tpm = try AzureVTPMEvidence(
            json: Array(text.replacingOccurrences(of: signature, with: String(flipped)).utf8)
        )
        let tpmFailure = await #expect(throws: AzureVTPMEvidence.VerificationFailure.self) {
            try await tpm.verify(at: Self.time)
        }
        #expect(tpmFailure?.check == .tpmQuote)

        // The HCL report with a changed runtime data byte no longer matches the SNP report's report data.
        var hcl = try Vectors.bytes(Self.snp + "hcl-report.bin")
        hcl[0x6E0] &+= 1
        let changed = try AzureHCLReport(bytes: hcl)
        guard case .sevSNP(let report) = changed.hardwareReport else {
            Issue.record("the Azure SNP HCL report carries no SEV-SNP report")
            return
        }
        let vcek = try AMDCertificate.parseAll(Vectors.bytes(Self.snp + "vcek.pem"))
        let claims = try report.verify(signingCertificate: vcek[0], chain: Array(vcek.dropFirst()), at: Self.time)
        #expect(!changed.bindsRuntimeData(to: claims.reportData))

        // An SNP document whose VCEK belongs to another chip fails in the hardware layer.
        let other = try AMDCertificate(derEncoded: Vectors.bytes("snp/trustee/test-vcek.der"))
        let der = Data(other.derBytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let vcekField = try #require(document["vcek"] as? String)
        let swapped = try AzureVTPMEvidence(json: Array(text.replacingOccurrences(of: vcekField, with: der).utf8))
        await expectAttestationError(.reportedTCB) { try await swapped.verify(at: Self.time) }
        #expect(AzureVTPMEvidence.looksLikeEvidence(original))
        #expect(!AzureVTPMEvidence.looksLikeEvidence(Array("{}".utf8)))
    }
}
