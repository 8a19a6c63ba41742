public import EnclaveCore

/// The 384-byte SGX report body (`sgx_report_body_t`) of an enclave or of the quoting enclave.
public struct SGXReportBody: Hashable, Sendable {
    /// The encoded size.
    public static let size = 384

    /// The platform's CPU security version (16 bytes) when the report was made.
    public let cpuSVN: [UInt8]
    /// The enclave's MISCSELECT: which extra state is saved on an exception.
    public let miscSelect: UInt32
    /// The extended product ID (16 bytes) the enclave's signer chose (KSS).
    public let isvExtendedProductID: [UInt8]
    /// `flags` (low 8 bytes) and `xfrm` (high 8 bytes).
    public let attributes: [UInt8]
    /// The enclave's measurement (MRENCLAVE): a hash of its initial code and data.
    public let mrEnclave: Digest32
    /// The hash of the key that signed the enclave (MRSIGNER).
    public let mrSigner: Digest32
    /// 64 bytes the loader set at launch (CONFIGID); the service compares it with the hash of `initTimeData`.
    public let configID: [UInt8]
    /// The product ID the signer gave the enclave (ISVPRODID).
    public let isvProductID: UInt16
    /// The enclave's security version number (ISVSVN).
    public let isvSVN: UInt16
    /// The security version of ``configID`` (CONFIGSVN).
    public let configSVN: UInt16
    /// The family ID (16 bytes) the enclave's signer chose (KSS).
    public let isvFamilyID: [UInt8]
    /// The 64 bytes the enclave supplied when making the report: where a nonce or a key's hash is bound.
    public let reportData: [UInt8]
    /// The reserved regions after MRENCLAVE (32 bytes), after MRSIGNER (32) and after CONFIGSVN (42), in order:
    /// zero in Intel's quotes, kept (not judged: later SGX versions define fields in reserved space) so that a
    /// value's fields are all its bytes hold.
    public let reserved: [UInt8]

    /// The exact bytes it was parsed from (or encodes to).
    public let bytes: [UInt8]

    /// The DEBUG bit of the attribute flags.
    public var isDebug: Bool { attributes[0] & 0x02 != 0 }

    /// Parse exactly 384 bytes. The reserved bytes after MISCSELECT must be zero; the other reserved regions are
    /// kept in ``reserved``.
    /// - Throws: `EnclaveError` `malformedInput` for another size or non-zero reserved bytes after MISCSELECT.
    public init(bytes: some Collection<UInt8>) throws(EnclaveError) {
        let bytes = Array(bytes)
        guard bytes.count == Self.size else {
            throw .malformedInput("an SGX report body is \(Self.size) bytes, got \(bytes.count)")
        }
        var reader = ByteReader(bytes)
        cpuSVN = Array(try reader.take(16, "CPUSVN"))
        miscSelect = try reader.integer(UInt32.self, "MISCSELECT")
        try Self.requireZero(&reader, 12)
        isvExtendedProductID = Array(try reader.take(16, "ISVEXTPRODID"))
        attributes = Array(try reader.take(16, "ATTRIBUTES"))
        mrEnclave = try reader.digest("MRENCLAVE")
        var reserved = Array(try reader.take(32, "reserved"))
        mrSigner = try reader.digest("MRSIGNER")
        reserved += try reader.take(32, "reserved")
        configID = Array(try reader.take(64, "CONFIGID"))
        isvProductID = try reader.integer(UInt16.self, "ISVPRODID")
        isvSVN = try reader.integer(UInt16.self, "ISVSVN")
        configSVN = try reader.integer(UInt16.self, "CONFIGSVN")
        reserved += try reader.take(42, "reserved")
        self.reserved = reserved
        isvFamilyID = Array(try reader.take(16, "ISVFAMILYID"))
        reportData = Array(try reader.take(64, "REPORTDATA"))
        try reader.expectEnd("report body")
        self.bytes = bytes
    }

    /// The reserved bytes after MISCSELECT must be zero.
    private static func requireZero(_ reader: inout ByteReader, _ count: Int) throws(EnclaveError) {
        guard try reader.take(count, "reserved").allSatisfy({ $0 == 0 }) else {
            throw .malformedInput("reserved bytes of the report body are not zero")
        }
    }
}
