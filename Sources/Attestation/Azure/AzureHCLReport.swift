internal import Crypto
public import EnclaveCore
internal import Foundation

/// The attestation report of Azure's paravisor (HCL) in a confidential VM, as read from the vTPM's NV index: a
/// 32-byte header (`HCLA`), the hardware report (an SEV-SNP report, or a TDX TDREPORT), and runtime data — JSON
/// with the vTPM attestation key (`HCLAkPub`) — whose hash the hardware report binds in its report data.
public struct AzureHCLReport: Sendable {
    /// The hardware report's type.
    public enum HardwareReport: Sendable {
        /// An SEV-SNP attestation report, verifiable on its own with the VCEK.
        case sevSNP(SEVSNPReport)
        /// A TDX TDREPORT (the matching TD quote is separate evidence); its report data.
        case tdx(reportData: [UInt8])
    }

    /// The HCL report header's version.
    public let version: UInt32
    /// The hardware report; its report data binds the hash of ``runtimeData``.
    public let hardwareReport: HardwareReport
    /// The runtime data (UTF-8 JSON), exactly as hashed.
    public let runtimeData: [UInt8]
    /// 1: SHA-256, 2: SHA-384, 3: SHA-512.
    public let hashType: UInt32

    static let headerSize = 0x20
    static let hardwareReportSize = 0x4A0
    /// The largest report accepted.
    public static let maxSize = 16 << 10

    /// Parse a report; only zero padding may follow the runtime data.
    /// - Throws: `EnclaveError` — `limitExceeded` over ``maxSize``, `malformedInput` when it is not an HCL report or a
    ///   length, type or padding is wrong.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= Self.maxSize else { throw .limitExceeded("HCL report larger than \(Self.maxSize) bytes") }
        var reader = ByteReader(bytes)
        guard Array(try reader.take(4, "signature")) == Array("HCLA".utf8) else {
            throw .malformedInput("not an Azure HCL report (no HCLA signature)")
        }
        version = try reader.integer(UInt32.self, "version")
        _ = try reader.take(Self.headerSize - 8, "header")
        let hardware = Array(try reader.take(Self.hardwareReportSize, "hardware report"))
        let dataSize = Int(try reader.integer(UInt32.self, "runtime data size"))
        _ = try reader.integer(UInt32.self, "runtime data version")
        let reportType = try reader.integer(UInt32.self, "report type")
        hashType = try reader.integer(UInt32.self, "hash type")
        guard (1...3).contains(hashType) else { throw .malformedInput("unknown runtime data hash type \(hashType)") }
        let variableSize = Int(try reader.integer(UInt32.self, "runtime data length"))
        guard dataSize == variableSize + 20 else {
            throw .malformedInput("runtime data size \(dataSize) does not match its length \(variableSize)")
        }
        runtimeData = Array(try reader.take(variableSize, "runtime data"))
        guard try reader.take(reader.remaining, "padding").allSatisfy({ $0 == 0 }) else {
            throw .malformedInput("non-zero bytes follow the runtime data")
        }
        switch reportType {
        case 2: hardwareReport = .sevSNP(try SEVSNPReport(bytes: hardware))
        case 4: hardwareReport = .tdx(reportData: Array(hardware[0x80..<0xC0]))
        default: throw .malformedInput("unknown hardware report type \(reportType)")
        }
    }

    /// The hash of the runtime data the hardware report must carry.
    public var runtimeDataHash: [UInt8] {
        switch hashType {
        case 2: Array(SHA384.hash(data: runtimeData))
        case 3: Array(SHA512.hash(data: runtimeData))
        default: Array(SHA256.hash(data: runtimeData))
        }
    }

    /// Whether `reportData` (the verified hardware report's, or for TDX the TD quote's) starts with the hash of the
    /// runtime data.
    public func bindsRuntimeData(to reportData: [UInt8]) -> Bool {
        let hash = runtimeDataHash
        return reportData.count >= hash.count && Array(reportData.prefix(hash.count)) == hash
    }

    /// The vTPM attestation key (`HCLAkPub`) as a JWK, from the runtime data.
    /// - Throws: `EnclaveError` `malformedInput` when the runtime data holds no RSA key `HCLAkPub`.
    public func attestationKey() throws(EnclaveError) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(runtimeData)) as? [String: Any],
            let keys = object["keys"] as? [[String: Any]],
            let key = keys.first(where: { $0["kid"] as? String == "HCLAkPub" }),
            key["kty"] as? String == "RSA", let n = key["n"] as? String, let e = key["e"] as? String
        else {
            throw .malformedInput("the runtime data has no RSA key HCLAkPub")
        }
        return ["kid": "HCLAkPub", "kty": "RSA", "n": n, "e": e]
    }
}
