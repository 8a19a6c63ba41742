public import EnclaveCore
public import Foundation

/// Evidence of an Azure confidential VM with a paravisor vTPM, in the JSON shapes the Confidential Containers
/// attestation agent sends (`az-snp-vtpm`, `az-tdx-vtpm`, versions 0 to 2): the HCL report, a TPM quote over the
/// verifier's nonce, and the VCEK (SEV-SNP) or the TD quote (TDX).
///
/// The chain of trust: the hardware report verifies on its own; it binds the HCL runtime data, which holds the
/// vTPM's attestation key; that key signed the TPM quote, which carries the nonce and the PCRs.
public struct AzureVTPMEvidence: Sendable {
    /// The hardware evidence beside the HCL report.
    public enum Hardware: Sendable {
        /// An SEV-SNP guest: the VCEK that signed the HCL report's hardware report.
        case sevSNP(vcek: AMDCertificate)
        /// A TDX guest: the TD quote for the HCL report's TDREPORT, verified with Intel collateral.
        case tdx(quote: DCAPQuote)
    }

    /// Why verification failed: the check and a reason (``AttestationError``, the one error of every verifier).
    public typealias VerificationFailure = AttestationError

    /// The paravisor's report: the hardware report and the runtime data holding the vTPM attestation key.
    public let hcl: AzureHCLReport
    /// The vTPM's quote over the verifier's nonce and the PCRs, signed by the attestation key in ``hcl``.
    public let tpmQuote: TPMQuote
    /// The evidence that makes the hardware report verifiable: the VCEK or the TD quote.
    public let hardware: Hardware

    /// The largest evidence document accepted.
    public static let maxSize = 1 << 20

    /// Whether `bytes` look like such a document (a JSON object naming a TPM quote and an HCL report).
    public static func looksLikeEvidence(_ bytes: [UInt8]) -> Bool {
        (try? document(bytes)).map(Self.hasParts) ?? false
    }

    /// The document in `bytes` if it has the parts of vTPM evidence (`nil` for other JSON or non-JSON), parsed once.
    /// - Throws: when it has those parts but they are malformed.
    public static func parseIfPresent(json bytes: [UInt8]) throws(EnclaveError) -> AzureVTPMEvidence? {
        guard let document = try? document(bytes), hasParts(document) else { return nil }
        return try AzureVTPMEvidence(document: document)
    }

    /// Parse a document. Byte fields may be arrays of numbers, hexadecimal (TPM quote fields) or base64url (reports,
    /// certificates); the VCEK may also be PEM.
    /// - Throws: `EnclaveError` — `limitExceeded` over ``maxSize``, `malformedInput` when a part is missing or does not
    ///   parse. Nothing is verified here: call `verify`.
    public init(json bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= Self.maxSize else { throw .limitExceeded("vTPM evidence larger than 1 MiB") }
        try self.init(document: try JSONValue(parsing: bytes))
    }

    private static func document(_ bytes: [UInt8]) throws(EnclaveError) -> JSONValue {
        let first = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        guard first == UInt8(ascii: "{"), bytes.count <= maxSize else { throw .malformedInput("not a JSON object") }
        return try JSONValue(parsing: bytes)
    }

    private static func hasParts(_ document: JSONValue) -> Bool {
        (document["tpm_quote"] ?? document["quote"]) != nil && (document["hcl_report"] ?? document["report"]) != nil
    }

    private init(document: JSONValue) throws(EnclaveError) {
        guard let quote = document["tpm_quote"] ?? document["quote"] else {
            throw .malformedInput("vTPM evidence has no TPM quote")
        }
        guard let report = document["hcl_report"] ?? document["report"] else {
            throw .malformedInput("vTPM evidence has no HCL report")
        }
        guard case .array(let pcrValues)? = quote["pcrs"] else { throw .malformedInput("the TPM quote has no PCRs") }
        var pcrs: [[UInt8]] = []
        for value in pcrValues { pcrs.append(try Self.bytes(value, text: .hex, what: "PCR")) }
        tpmQuote = try TPMQuote(
            message: try Self.bytes(quote["message"], text: .hex, what: "TPM quote message"),
            signature: try Self.bytes(quote["signature"], text: .hex, what: "TPM quote signature"),
            pcrs: pcrs
        )
        hcl = try AzureHCLReport(bytes: try Self.bytes(report, text: .base64URL, what: "HCL report"))
        if let tdQuote = document["td_quote"] {
            hardware = .tdx(quote: try DCAPQuote(bytes: try Self.bytes(tdQuote, text: .base64URL, what: "TD quote")))
        } else if let vcek = document["vcek"] {
            if case .string(let token) = vcek, let text = token.decoded(), text.hasPrefix("-----BEGIN") {
                hardware = .sevSNP(vcek: try AMDCertificate(pemEncoded: text))
            } else {
                hardware = .sevSNP(
                    vcek: try AMDCertificate(derEncoded: try Self.bytes(vcek, text: .base64URL, what: "VCEK"))
                )
            }
        } else {
            throw .malformedInput("vTPM evidence has neither a VCEK nor a TD quote")
        }
    }

    /// Verify every layer. SEV-SNP: the report on AMD's chain at `time`. TDX: the TD quote to `intelAnchors` with
    /// Intel's `collateral` (required, fail closed), or — only when `tdxChainOnly` asks for it — its signatures and
    /// chain alone (``DCAPQuote/verifyChainOnly(anchors:at:)``: revocation and TCB not checked). Then the HCL runtime
    /// data binding, the TPM quote's signature by the vTPM key, and its PCR digest. The claims are the hardware's,
    /// with the PCRs and nonce under `tpm`.
    /// - Throws: ``VerificationFailure`` with check ``AttestationError/Code/collateralUnavailable`` for a TD quote
    ///   without collateral and without `tdxChainOnly`; the hardware layer's failure otherwise.
    public func verify(
        at time: Date,
        amdChain: [AMDCertificate] = [],
        intelAnchors: [DCAPQuote.TrustAnchor] = [.init(certificate: IntelRoots.sgxRootCA, simulated: false)],
        collateral: Collateral? = nil,
        tdxChainOnly: Bool = false
    ) async throws -> Claims {
        var claims: Claims
        switch (hardware, hcl.hardwareReport) {
        case (.sevSNP(let vcek), .sevSNP(let report)):
            claims = try report.verify(signingCertificate: vcek, chain: amdChain, at: time)
        case (.tdx(let quote), .tdx):
            if let collateral {
                claims = try await quote.verify(anchors: intelAnchors, collateral: collateral, at: time)
            } else if tdxChainOnly {
                claims = try await quote.verifyChainOnly(anchors: intelAnchors, at: time)
            } else {
                throw VerificationFailure(
                    check: .collateralUnavailable,
                    reason: "a TD quote is verified with Intel's collateral (or, explicitly, chain only)"
                )
            }
        default:
            throw VerificationFailure(
                check: .hclReport,
                reason: "the HCL report is for another TEE than the evidence"
            )
        }
        guard hcl.bindsRuntimeData(to: claims.reportData) else {
            throw VerificationFailure(
                check: .hclRuntimeData,
                reason: "the hardware report does not bind the HCL runtime data"
            )
        }
        let key: [String: String]
        do {
            key = try hcl.attestationKey()
        } catch {
            throw VerificationFailure(check: .hclRuntimeData, reason: error.reason)
        }
        do {
            try tpmQuote.verify(attestationKey: key)
        } catch {
            throw VerificationFailure(check: .tpmQuote, reason: error.reason)
        }
        claims.tpm = Claims.TPM(pcrs: tpmQuote.pcrs, nonce: tpmQuote.nonce)
        return claims
    }

    private enum TextEncoding { case hex, base64URL }

    private static func bytes(_ value: JSONValue?, text: TextEncoding, what: String) throws(EnclaveError) -> [UInt8] {
        switch value {
        case .array(let items)?:
            var bytes: [UInt8] = []
            bytes.reserveCapacity(items.count)
            for item in items {
                guard case .integer(let number) = item, let byte = UInt8(exactly: number) else {
                    throw .malformedInput("\(what) holds a number that is not a byte")
                }
                bytes.append(byte)
            }
            return bytes
        case .string(let token)?:
            guard let string = token.decoded() else { throw .malformedInput("\(what) is not text") }
            let decoded: [UInt8]? =
                switch text {
                case .hex: Hex.decode(string)
                case .base64URL: Base64URL.decode(string)
                }
            guard let decoded else { throw .malformedInput("\(what) is not \(text == .hex ? "hex" : "base64url")") }
            return decoded
        default:
            throw .malformedInput("vTPM evidence lacks \(what)")
        }
    }
}
