public import EnclaveCore

/// The 384-byte SGX report body (`sgx_report_body_t`) of an enclave or of the quoting enclave.
public struct SGXReportBody: Hashable, Sendable {
    /// The encoded size.
    public static let size = 384

    public var cpuSVN: [UInt8]
    public var miscSelect: UInt32
    public var isvExtendedProductID: [UInt8]
    /// `flags` (low 8 bytes) and `xfrm` (high 8 bytes).
    public var attributes: [UInt8]
    public var mrEnclave: Digest32
    public var mrSigner: Digest32
    public var configID: [UInt8]
    public var isvProductID: UInt16
    public var isvSVN: UInt16
    public var configSVN: UInt16
    public var isvFamilyID: [UInt8]
    public var reportData: [UInt8]

    /// The exact bytes it was parsed from (or encodes to).
    public let bytes: [UInt8]

    /// The DEBUG bit of the attribute flags.
    public var isDebug: Bool { attributes[0] & 0x02 != 0 }

    /// Parse exactly 384 bytes. Reserved fields must be zero.
    public init(bytes: some Collection<UInt8>) throws(EnclaveError) {
        let bytes = Array(bytes)
        guard bytes.count == Self.size else {
            throw .malformedInput("an SGX report body is \(Self.size) bytes, got \(bytes.count)")
        }
        var reader = ByteReader(bytes)
        cpuSVN = Array(try reader.take(16, "CPUSVN"))
        miscSelect = try reader.integer(UInt32.self, "MISCSELECT")
        guard try reader.take(12, "reserved").allSatisfy({ $0 == 0 }) else {
            throw .malformedInput("reserved bytes of the report body are not zero")
        }
        isvExtendedProductID = Array(try reader.take(16, "ISVEXTPRODID"))
        attributes = Array(try reader.take(16, "ATTRIBUTES"))
        mrEnclave = try reader.digest("MRENCLAVE")
        _ = try reader.take(32, "reserved")
        mrSigner = try reader.digest("MRSIGNER")
        _ = try reader.take(32, "reserved")
        configID = Array(try reader.take(64, "CONFIGID"))
        isvProductID = try reader.integer(UInt16.self, "ISVPRODID")
        isvSVN = try reader.integer(UInt16.self, "ISVSVN")
        configSVN = try reader.integer(UInt16.self, "CONFIGSVN")
        _ = try reader.take(42, "reserved")
        isvFamilyID = Array(try reader.take(16, "ISVFAMILYID"))
        reportData = Array(try reader.take(64, "REPORTDATA"))
        try reader.expectEnd("report body")
        self.bytes = bytes
    }
}
