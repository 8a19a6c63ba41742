public import EnclaveCore

/// An Intel SGX DCAP ECDSA quote, version 3, parsed strictly. The original bytes are kept for signature checks.
///
/// Layout: a 48-byte header, the 384-byte enclave report body, a `u32` signature-data length, then the ECDSA
/// signature over header and body (64 bytes, r‖s), the attestation public key (64 bytes, x‖y), the quoting
/// enclave's report body, its signature by the PCK key, `u16`-prefixed QE authentication data, and certification
/// data (`u16` type, `u32` length, data; type 5 is the PEM PCK certificate chain). Nothing may follow.
public struct SGXQuote: Hashable, Sendable {
    /// The header.
    public struct Header: Hashable, Sendable {
        public var version: UInt16
        public var attestationKeyType: UInt16
        public var teeType: UInt32
        public var qeSVN: UInt16
        public var pceSVN: UInt16
        public var qeVendorID: [UInt8]
        public var userData: [UInt8]
    }

    /// Certification data of the quoting enclave.
    public struct CertificationData: Hashable, Sendable {
        /// 5: PEM certificate chain (PCK leaf, intermediate CA, root CA).
        public var type: UInt16
        public var data: [UInt8]
    }

    /// The largest quote accepted.
    public static let maxSize = 64 << 10
    /// Intel's quoting enclave vendor ID.
    public static let intelQEVendorID: [UInt8] = [
        0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
    ]

    public let header: Header
    public let reportBody: SGXReportBody
    /// ECDSA P-256 signature (r‖s) over ``signedBytes``.
    public let signature: [UInt8]
    /// The attestation public key (x‖y).
    public let attestationKey: [UInt8]
    public let qeReport: SGXReportBody
    /// ECDSA P-256 signature (r‖s) of the PCK key over the QE report body.
    public let qeReportSignature: [UInt8]
    public let qeAuthenticationData: [UInt8]
    public let certification: CertificationData
    /// The exact bytes parsed.
    public let bytes: [UInt8]

    /// Header and report body: what the attestation key signs.
    public var signedBytes: ArraySlice<UInt8> { bytes[0..<(48 + SGXReportBody.size)] }

    /// Parse a version 3 quote. Every length is checked, reserved fields must be zero, nothing may trail.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= Self.maxSize else { throw .limitExceeded("quote larger than \(Self.maxSize) bytes") }
        var reader = ByteReader(bytes)
        let version = try reader.integer(UInt16.self, "version")
        guard version == 3 else { throw .malformedInput("unsupported quote version \(version)") }
        let keyType = try reader.integer(UInt16.self, "attestation key type")
        guard keyType == 2 else { throw .malformedInput("attestation key type \(keyType) is not ECDSA P-256") }
        let teeType = try reader.integer(UInt32.self, "TEE type")
        guard teeType == 0 else { throw .malformedInput("TEE type \(teeType) is not SGX") }
        header = Header(
            version: version,
            attestationKeyType: keyType,
            teeType: teeType,
            qeSVN: try reader.integer(UInt16.self, "QE SVN"),
            pceSVN: try reader.integer(UInt16.self, "PCE SVN"),
            qeVendorID: Array(try reader.take(16, "QE vendor ID")),
            userData: Array(try reader.take(20, "user data"))
        )
        reportBody = try SGXReportBody(bytes: try reader.take(SGXReportBody.size, "report body"))
        let signatureLength = Int(try reader.integer(UInt32.self, "signature data length"))
        guard signatureLength == reader.remaining else {
            throw .malformedInput(
                "signature data length \(signatureLength) does not match the \(reader.remaining) bytes left"
            )
        }
        signature = Array(try reader.take(64, "quote signature"))
        attestationKey = Array(try reader.take(64, "attestation key"))
        qeReport = try SGXReportBody(bytes: try reader.take(SGXReportBody.size, "QE report"))
        qeReportSignature = Array(try reader.take(64, "QE report signature"))
        let authLength = Int(try reader.integer(UInt16.self, "QE authentication data length"))
        qeAuthenticationData = Array(try reader.take(authLength, "QE authentication data"))
        let certType = try reader.integer(UInt16.self, "certification data type")
        let certLength = Int(try reader.integer(UInt32.self, "certification data length"))
        certification = CertificationData(
            type: certType,
            data: Array(try reader.take(certLength, "certification data"))
        )
        try reader.expectEnd("quote")
        self.bytes = bytes
    }
}
