public import EnclaveCore

/// An Intel DCAP ECDSA quote — SGX (versions 3, 4 and 5) or TDX (versions 4 and 5) — parsed strictly. The original
/// bytes are kept for signature checks.
///
/// Layout: a 48-byte header; in version 5 a body descriptor (`u16` type: 1 SGX, 2 TD 1.0, 3 TD 1.5; `u32` size);
/// the body (an SGX report body or a TD report); a `u32` signature-data length; then the ECDSA signature over header
/// and body (64 bytes, r‖s) and the attestation public key (64 bytes, x‖y). In version 3 the quoting enclave's
/// report body, its signature by the PCK key, `u16`-prefixed QE authentication data and the certification data
/// (`u16` type, `u32` length; type 5 is the PEM PCK chain) follow directly; versions 4 and 5 wrap those in
/// certification data of type 6. After the signature data only zero padding may follow (quote generators hand out
/// fixed-size buffers); it is not part of ``bytes``.
public struct DCAPQuote: Hashable, Sendable {
    /// The header.
    public struct Header: Hashable, Sendable {
        /// The quote format version: 3, 4 or 5.
        public let version: UInt16
        /// The attestation key's type: 2, ECDSA P-256 (the only one accepted).
        public let attestationKeyType: UInt16
        /// 0 for SGX, 0x81 for TDX.
        public let teeType: UInt32
        /// Version 3: the QE SVN; reserved in later versions.
        public let qeSVN: UInt16
        /// Version 3: the PCE SVN; reserved in later versions.
        public let pceSVN: UInt16
        /// The 16-byte ID of the quoting enclave's vendor; Intel's is ``DCAPQuote/intelQEVendorID``. Not a check by
        /// itself: the pinned ``QuotingEnclaveIdentity`` is what makes the quoting enclave Intel's.
        public let qeVendorID: [UInt8]
        /// 20 bytes the quoting enclave defines (Intel's puts a platform identifier in the first 16). Covered by the
        /// quote's
        /// signature, but no verifier check reads it.
        public let userData: [UInt8]
    }

    /// The attested body.
    public enum Body: Hashable, Sendable {
        /// An SGX enclave's report body (a quote with TEE type ``DCAPQuote/teeTypeSGX``).
        case sgx(SGXReportBody)
        /// A TDX trust domain's report body, TDX 1.0 or 1.5 (TEE type ``DCAPQuote/teeTypeTDX``).
        case td(TDReport)
    }

    /// Certification data of the quoting enclave.
    public struct CertificationData: Hashable, Sendable {
        /// 5: PEM certificate chain (PCK leaf, intermediate CA, root CA).
        public let type: UInt16
        /// The certification data's bytes; for type 5 the PEM chain, untrusted until it chains to a trust anchor.
        public let data: [UInt8]
    }

    /// The largest quote accepted, padding included.
    public static let maxSize = 64 << 10
    /// The TEE type of SGX quotes.
    public static let teeTypeSGX: UInt32 = 0
    /// The TEE type of TDX quotes.
    public static let teeTypeTDX: UInt32 = 0x81
    /// Intel's quoting enclave vendor ID.
    public static let intelQEVendorID: [UInt8] = [
        0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
    ]

    /// The quote header.
    public let header: Header
    /// The attested body: what the enclave or TD is and the report data it bound.
    public let body: Body
    /// ECDSA P-256 signature (r‖s) over ``signedBytes``.
    public let signature: [UInt8]
    /// The attestation public key (x‖y).
    public let attestationKey: [UInt8]
    /// The quoting enclave's own report body. Its report data binds the attestation key: the first 32 bytes must be
    /// SHA-256(``attestationKey`` ‖ ``qeAuthenticationData``), the rest zero.
    public let qeReport: SGXReportBody
    /// ECDSA P-256 signature (r‖s) of the PCK key over the QE report body.
    public let qeReportSignature: [UInt8]
    /// Authentication data the quoting enclave chose (often empty); hashed with the attestation key into the QE report
    /// data.
    public let qeAuthenticationData: [UInt8]
    /// The PCK certification data (for versions 4 and 5, the one nested in the type-6 QE certification data).
    public let certification: CertificationData
    /// The exact bytes of the quote, without trailing padding.
    public let bytes: [UInt8]
    private let signedLength: Int

    /// Header and body (with the version 5 body descriptor): what the attestation key signs.
    public var signedBytes: ArraySlice<UInt8> { bytes[0..<signedLength] }

    /// The SGX report body, for an SGX quote.
    public var sgxReport: SGXReportBody? {
        if case .sgx(let report) = body { return report }
        return nil
    }

    /// The TD report, for a TDX quote.
    public var tdReport: TDReport? {
        if case .td(let report) = body { return report }
        return nil
    }

    /// Whether this is a TDX quote.
    public var isTDX: Bool { header.teeType == Self.teeTypeTDX }

    /// The 64 bytes of report data of the attested enclave or TD.
    public var reportData: [UInt8] {
        switch body {
        case .sgx(let report): report.reportData
        case .td(let report): report.reportData
        }
    }

    /// Parse a quote. Every length is checked, reserved fields must be zero, and only zero padding may trail.
    /// - Throws: `EnclaveError` — `limitExceeded` over ``maxSize``, `malformedInput` for an unsupported version, key
    ///   type or TEE type, a length out of bounds, non-zero reserved bytes or trailing data.
    public init(bytes input: [UInt8]) throws(EnclaveError) {
        guard input.count <= Self.maxSize else { throw .limitExceeded("quote larger than \(Self.maxSize) bytes") }
        var reader = ByteReader(input)
        let version = try reader.integer(UInt16.self, "version")
        guard (3...5).contains(version) else { throw .malformedInput("unsupported quote version \(version)") }
        let keyType = try reader.integer(UInt16.self, "attestation key type")
        guard keyType == 2 else { throw .malformedInput("attestation key type \(keyType) is not ECDSA P-256") }
        let teeType = try reader.integer(UInt32.self, "TEE type")
        guard teeType == Self.teeTypeSGX || (teeType == Self.teeTypeTDX && version >= 4) else {
            throw .malformedInput("TEE type \(teeType) is not supported in a version \(version) quote")
        }
        header = Header(
            version: version,
            attestationKeyType: keyType,
            teeType: teeType,
            qeSVN: try reader.integer(UInt16.self, "QE SVN"),
            pceSVN: try reader.integer(UInt16.self, "PCE SVN"),
            qeVendorID: Array(try reader.take(16, "QE vendor ID")),
            userData: Array(try reader.take(20, "user data"))
        )

        let bodySize: Int
        if version == 5 {
            let bodyType = try reader.integer(UInt16.self, "body type")
            let declared = Int(try reader.integer(UInt32.self, "body size"))
            switch (bodyType, teeType) {
            case (1, Self.teeTypeSGX): bodySize = SGXReportBody.size
            case (2, Self.teeTypeTDX): bodySize = TDReport.size10
            case (3, Self.teeTypeTDX): bodySize = TDReport.size15
            default: throw .malformedInput("body type \(bodyType) does not fit TEE type \(teeType)")
            }
            guard declared == bodySize else {
                throw .malformedInput("body type \(bodyType) is \(bodySize) bytes, the quote says \(declared)")
            }
        } else {
            bodySize = teeType == Self.teeTypeSGX ? SGXReportBody.size : TDReport.size10
        }
        let bodyBytes = try reader.take(bodySize, "body")
        body =
            teeType == Self.teeTypeSGX ? .sgx(try SGXReportBody(bytes: bodyBytes)) : .td(try TDReport(bytes: bodyBytes))
        signedLength = reader.position

        let signatureLength = Int(try reader.integer(UInt32.self, "signature data length"))
        var signatureData = ByteReader(Array(try reader.take(signatureLength, "signature data")))
        signature = Array(try signatureData.take(64, "quote signature"))
        attestationKey = Array(try signatureData.take(64, "attestation key"))
        if version == 3 {
            let qe = try Self.qeCertificationData(&signatureData)
            (qeReport, qeReportSignature, qeAuthenticationData, certification) = qe
        } else {
            let outerType = try signatureData.integer(UInt16.self, "certification data type")
            guard outerType == 6 else {
                throw .malformedInput("certification data type \(outerType) is not QE report certification data (6)")
            }
            let outerLength = Int(try signatureData.integer(UInt32.self, "certification data length"))
            var nested = ByteReader(Array(try signatureData.take(outerLength, "QE report certification data")))
            (qeReport, qeReportSignature, qeAuthenticationData, certification) = try Self.qeCertificationData(&nested)
            try nested.expectEnd("QE report certification data")
        }
        try signatureData.expectEnd("signature data")
        let end = reader.position
        guard input[end...].allSatisfy({ $0 == 0 }) else {
            throw .malformedInput("\(input.count - end) bytes that are not zero padding follow the quote")
        }
        self.bytes = end == input.count ? input : Array(input[..<end])
    }

    /// QE report, its signature, QE authentication data and the PCK certification data.
    private static func qeCertificationData(
        _ reader: inout ByteReader
    ) throws(EnclaveError) -> (SGXReportBody, [UInt8], [UInt8], CertificationData) {
        let report = try SGXReportBody(bytes: try reader.take(SGXReportBody.size, "QE report"))
        let signature = Array(try reader.take(64, "QE report signature"))
        let authLength = Int(try reader.integer(UInt16.self, "QE authentication data length"))
        let auth = Array(try reader.take(authLength, "QE authentication data"))
        let certType = try reader.integer(UInt16.self, "PCK certification data type")
        let certLength = Int(try reader.integer(UInt32.self, "PCK certification data length"))
        let data = Array(try reader.take(certLength, "PCK certification data"))
        return (report, signature, auth, CertificationData(type: certType, data: data))
    }
}
