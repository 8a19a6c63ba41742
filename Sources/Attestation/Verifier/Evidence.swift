public import EnclaveCore
internal import Foundation

/// Evidence as it travels from an enclave to a verifier: its format, its bytes, and the auxiliary data it needs
/// (an SEV-SNP certificate table, the VCEK chain). Made from an enclave's `EnclaveCore.AttestationEvidence`, a
/// file's bytes (``init(detecting:format:auxiliaryData:certificates:)``) or an attestation service request
/// (``init(serviceDocument:route:)``); verified by ``EvidenceVerifier``; posted by `AttestationClient.attest(_:)`
/// as ``serviceDocument`` on ``maaRoute``.
public struct Evidence: Hashable, Sendable {
    /// The kind of evidence. An open set (add a format without breaking a caller's `switch`).
    public struct Format: Hashable, Sendable, CustomStringConvertible {
        /// The format's name: `sgx`, `sim-sgx`, `tdx`, `sev-snp`, `azure-vtpm`.
        public let name: String

        init(_ name: String) { self.name = name }

        /// The format named `name`, if it is one of ``all``.
        public init?(name: String) {
            guard let format = Self.all.first(where: { $0.name == name }) else { return nil }
            self = format
        }

        public var description: String { name }

        /// An Intel SGX DCAP quote.
        public static let sgx = Format("sgx")
        /// An SGX quote of EnclaveKit's simulated platform (verified like ``sgx``, to the simulated root).
        public static let simulatedSGX = Format("sim-sgx")
        /// An Intel TDX DCAP quote.
        public static let tdx = Format("tdx")
        /// An AMD SEV-SNP attestation report, with its VCEK or VLEK (certificate table or certificates).
        public static let sevSNP = Format("sev-snp")
        /// An Azure confidential VM's vTPM evidence document (HCL report, TPM quote, VCEK or TD quote), JSON.
        public static let azureVTPM = Format("azure-vtpm")

        /// Every format.
        public static let all: [Format] = [.sgx, .simulatedSGX, .tdx, .sevSNP, .azureVTPM]
    }

    /// The format.
    public var format: Format
    /// The quote, report or (Azure vTPM) JSON document.
    public var bytes: [UInt8]
    /// SEV-SNP: a certificate table (configfs-tsm `auxblob`, `SNP_GET_EXT_REPORT`) with the VCEK or VLEK, ASK, ARK;
    /// empty if none.
    public var auxiliaryData: [UInt8]
    /// SEV-SNP: the VCEK or VLEK first, then the ASK and ARK if given (DER, or a PEM bundle); empty if none.
    public var certificates: [UInt8]

    /// The largest evidence accepted, in each of its parts.
    public static let maxSize = 1 << 20

    /// Evidence of a known format, as given. Nothing is parsed or checked here, not even sizes: each part is parsed,
    /// within its own limits, only when verified.
    ///
    /// - Parameters:
    ///   - format: The evidence's format; the verifier refuses bytes of another format
    ///     (``AttestationError/Code/wrongEvidenceType``).
    ///   - bytes: The quote, report or (Azure vTPM) JSON document.
    ///   - auxiliaryData: SEV-SNP: a certificate table; empty if none.
    ///   - certificates: SEV-SNP: the VCEK or VLEK first, then the ASK and ARK (DER or PEM); empty if none.
    public init(format: Format, bytes: [UInt8], auxiliaryData: [UInt8] = [], certificates: [UInt8] = []) {
        self.format = format
        self.bytes = bytes
        self.auxiliaryData = auxiliaryData
        self.certificates = certificates
    }

    /// An enclave's evidence: its provider names the format (`sim_sgx`, `tdx_guest`, `sev_guest`, `sgx`), its
    /// auxiliary data travels with it.
    /// - Throws: ``AttestationError/Code/unsupportedFormat`` for an unknown provider.
    public init(_ evidence: AttestationEvidence) throws(AttestationError) {
        let format: Format
        switch evidence.provider {
        case AttestationEvidence.simulatedProvider: format = .simulatedSGX
        case "tdx_guest": format = .tdx
        case "sev_guest": format = .sevSNP
        case "sgx", "sgx_enclave": format = .sgx
        case let other: throw AttestationError(.unsupportedFormat, "no verifier for evidence of provider \(other)")
        }
        self.init(format: format, bytes: evidence.bytes, auxiliaryData: evidence.auxiliaryData)
    }

    /// Evidence read from a file (`enclave verify`): `format` if given, otherwise detected — an Azure vTPM JSON
    /// document, an SEV-SNP report (its size, 1184 bytes, or certificates given with it), else a DCAP quote (SGX or
    /// TDX by its header).
    /// - Throws: ``AttestationError`` — ``AttestationError/Code/malformedEvidence`` when a part is over ``maxSize`` or
    ///   a quote does not parse, ``AttestationError/Code/wrongEvidenceType`` when the quote is not of `format`.
    public init(
        detecting bytes: [UInt8],
        format: Format? = nil,
        auxiliaryData: [UInt8] = [],
        certificates: [UInt8] = []
    ) throws(AttestationError) {
        guard bytes.count <= Self.maxSize, auxiliaryData.count <= Self.maxSize, certificates.count <= Self.maxSize
        else { throw AttestationError(.malformedEvidence, "evidence larger than 1 MiB") }
        let detected: Format
        if let format, format != .sgx && format != .tdx {
            detected = format
        } else if format == nil && AzureVTPMEvidence.looksLikeEvidence(bytes) {
            detected = .azureVTPM
        } else if format == nil
            && (!auxiliaryData.isEmpty || !certificates.isEmpty || bytes.count == SEVSNPReport.size)
        {
            detected = .sevSNP
        } else {
            let quote: DCAPQuote
            do { quote = try DCAPQuote(bytes: bytes) } catch { throw AttestationError(error) }
            let actual: Format = quote.isTDX ? .tdx : .sgx
            if let format, format != actual {
                throw AttestationError(.wrongEvidenceType, "the quote is not \(format)")
            }
            detected = actual
        }
        self.init(format: detected, bytes: bytes, auxiliaryData: auxiliaryData, certificates: certificates)
    }

    // MARK: The attestation service's routes and documents

    /// The attestation service's route (MAA's attestation type) for this evidence: `SgxEnclave`, `SimulatedEnclave`,
    /// `TdxVm`, `SevSnpVm`; Azure vTPM evidence on its hardware's (`TdxVm` or `SevSnpVm`).
    public var maaRoute: String {
        switch format {
        case .simulatedSGX: "SimulatedEnclave"
        case .tdx: "TdxVm"
        case .sevSNP: "SevSnpVm"
        case .azureVTPM:
            if case .tdx? = (try? AzureVTPMEvidence(json: bytes))?.hardware { "TdxVm" } else { "SevSnpVm" }
        default: "SgxEnclave"
        }
    }

    /// The evidence as the service's attestation request carries it (base64url in `quote` or `report`): the quote's
    /// bytes; for SEV-SNP a JSON document `{"report": …, "certificates": …, "vcek": …}` (base64url), so that the
    /// certificate table and certificates travel with the report; Azure vTPM documents as they are.
    public var serviceDocument: [UInt8] {
        guard format == .sevSNP else { return bytes }
        var object = ["report": Base64URL.encode(bytes)]
        if !auxiliaryData.isEmpty { object["certificates"] = Base64URL.encode(auxiliaryData) }
        if !certificates.isEmpty { object["vcek"] = Base64URL.encode(certificates) }
        return Array((try? JSONSerialization.data(withJSONObject: object, options: .sortedKeys)) ?? Data())
    }

    /// The request field that carries ``serviceDocument``: `report` for SEV-SNP (and Open Enclave), `quote` otherwise.
    public var serviceField: String { maaRoute == "SevSnpVm" ? "report" : "quote" }

    /// Evidence from an attestation service request posted on `route` (``maaRoute``'s values and `OpenEnclave`):
    /// quotes (Open Enclave's 16-byte report header stripped), Azure vTPM documents on `TdxVm` and `SevSnpVm`, and
    /// on `SevSnpVm` JSON documents in MAA's shape (`SnpReport`, `VcekCertChain`: base64url of the PEM chain) or
    /// ``serviceDocument``'s (`report`, `vcek`, `certificates`).
    /// - Throws: ``AttestationError`` — ``AttestationError/Code/malformedEvidence`` when it is over ``maxSize`` or does
    ///   not parse, ``AttestationError/Code/wrongEvidenceType`` for vTPM evidence of the other TEE,
    ///   ``AttestationError/Code/unsupportedFormat`` for an unknown route.
    public init(serviceDocument bytes: [UInt8], route: String) throws(AttestationError) {
        guard bytes.count <= Self.maxSize else {
            throw AttestationError(.malformedEvidence, "evidence larger than 1 MiB")
        }
        if route == "TdxVm" || route == "SevSnpVm", AzureVTPMEvidence.looksLikeEvidence(bytes) {
            self.init(format: .azureVTPM, bytes: bytes)
            // Only on its own TEE's route: a TDX vTPM document is not SEV-SNP evidence, whatever the paravisor says.
            guard maaRoute == route else {
                throw AttestationError(
                    .wrongEvidenceType,
                    "the evidence is Azure vTPM evidence of a \(maaRoute == "TdxVm" ? "TDX" : "SEV-SNP") VM, not "
                        + "evidence for \(route)"
                )
            }
            return
        }
        switch route {
        case "SevSnpVm":
            try self.init(snpDocument: bytes)
        case "SimulatedEnclave":
            self.init(format: .simulatedSGX, bytes: bytes)
        case "TdxVm":
            self.init(format: .tdx, bytes: bytes)
        case "OpenEnclave":
            self.init(format: .sgx, bytes: Self.stripOpenEnclaveHeader(bytes))
        case "SgxEnclave":
            self.init(format: .sgx, bytes: bytes)
        default:
            throw AttestationError(.unsupportedFormat, "no evidence format for the route \(route)")
        }
    }

    private init(snpDocument bytes: [UInt8]) throws(AttestationError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let reportText = (object["report"] ?? object["SnpReport"]) as? String,
            let report = Base64URL.decode(reportText)
        else {
            throw AttestationError(
                .malformedEvidence,
                "SEV-SNP evidence is a JSON object with SnpReport and VcekCertChain (MAA's shape), or report and vcek or "
                    + "certificates"
            )
        }
        var table: [UInt8] = []
        if let tableText = object["certificates"] as? String {
            guard let decoded = Base64URL.decode(tableText) else {
                throw AttestationError(.malformedEvidence, "certificates is not base64url")
            }
            table = decoded
        }
        var certificates: [UInt8] = []
        if let chainText = object["VcekCertChain"] as? String {
            guard let pem = Base64URL.decode(chainText) else {
                throw AttestationError(.malformedEvidence, "VcekCertChain is not base64url")
            }
            certificates = pem
        }
        if let vcekText = object["vcek"] as? String {
            if vcekText.hasPrefix("-----BEGIN") {
                certificates = Array(vcekText.utf8)
            } else {
                guard let decoded = Base64URL.decode(vcekText) else {
                    throw AttestationError(.malformedEvidence, "vcek is not base64url or PEM")
                }
                certificates = decoded
            }
        }
        self.init(format: .sevSNP, bytes: report, auxiliaryData: table, certificates: certificates)
    }

    /// Open Enclave wraps remote reports in a 16-byte header (version 1, type 2 = remote, size); bare quotes pass.
    public static func stripOpenEnclaveHeader(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count > 16, bytes[0] == 1, bytes[1...3].allSatisfy({ $0 == 0 }), bytes[4] == 2,
            bytes[5...7].allSatisfy({ $0 == 0 })
        else { return bytes }
        let size = bytes[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        guard size == UInt64(bytes.count - 16) else { return bytes }
        return Array(bytes[16...])
    }

    // MARK: SEV-SNP certificates

    /// The signing certificate (VCEK or VLEK) and the other certificates given with SEV-SNP evidence: the
    /// certificate table's first, then ``certificates`` (whose first, if any, is the signing certificate).
    func amdCertificates() throws(AttestationError) -> (leaf: AMDCertificate?, chain: [AMDCertificate]) {
        var leaf: AMDCertificate?
        var chain: [AMDCertificate] = []
        do {
            if !auxiliaryData.isEmpty {
                let table = try SEVSNPCertificateTable(bytes: auxiliaryData)
                leaf = table.vcek ?? table.vlek
                chain += [table.ask, table.ark].compactMap { $0 }
            }
            if !certificates.isEmpty {
                let parsed = try AMDCertificate.parseAll(certificates)
                leaf = parsed.first ?? leaf
                chain += parsed.dropFirst()
            }
        } catch {
            throw AttestationError(.certificate, error.reason)
        }
        return (leaf, chain)
    }
}
