public import Crypto

/// A local-attestation report: the identity of the enclave that made it and 64 bytes of report data, MACed with the
/// *target* enclave's report key. Only the target (through its platform) can check it.
///
/// Layout (little-endian): magic `EKRP`, `u8` version 1, uniqueID, signerID, `u16` productID, `u16` security
/// version, `u64` attributes, target uniqueID, 64 bytes of report data, 32-byte HMAC-SHA256 over all before it.
public struct LocalReport: Hashable, Sendable {
    static let magic: [UInt8] = Array("EKRP".utf8)
    /// The encoded size.
    public static let size = 4 + 1 + 32 + 32 + 2 + 2 + 8 + 32 + 64 + 32

    /// Who made the report.
    public let identity: EnclaveIdentity
    /// The enclave it is meant for.
    public let target: TargetInfo
    /// Data the reporting enclave binds (by convention SHA-256 of its claims, zero-padded).
    public let reportData: [UInt8]
    /// HMAC-SHA256 over ``signedBytes``.
    public let mac: [UInt8]

    /// The bytes the MAC covers.
    public var signedBytes: [UInt8] {
        var writer = ByteWriter()
        writer.append(Self.magic)
        writer.integer(UInt8(1))
        writer.append(identity.uniqueID.bytes)
        writer.append(identity.signerID.bytes)
        writer.integer(identity.productID)
        writer.integer(identity.securityVersion)
        writer.integer(identity.attributes.rawValue)
        writer.append(target.uniqueID.bytes)
        writer.append(reportData)
        return writer.bytes
    }

    /// The encoded report.
    public var bytes: [UInt8] { signedBytes + mac }

    /// Build and MAC a report (the platform does this).
    package init(
        identity: EnclaveIdentity,
        target: TargetInfo,
        reportData: [UInt8],
        key: SymmetricKey
    ) throws(EnclaveError) {
        guard reportData.count == 64 else { throw .malformedInput("report data must be 64 bytes") }
        let unsigned = LocalReport(identity: identity, target: target, reportData: reportData, mac: [])
        let mac = HMAC<SHA256>.authenticationCode(for: unsigned.signedBytes, using: key)
        self.init(identity: identity, target: target, reportData: reportData, mac: Array(mac))
    }

    private init(identity: EnclaveIdentity, target: TargetInfo, reportData: [UInt8], mac: [UInt8]) {
        self.identity = identity
        self.target = target
        self.reportData = reportData
        self.mac = mac
    }

    /// Parse a report (exact size, known magic and version). The MAC is not checked here: see ``verify(key:)``.
    /// - Throws: ``EnclaveError`` `malformedInput` for another size, magic or version.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count == Self.size else {
            throw .malformedInput("a report is \(Self.size) bytes, got \(bytes.count)")
        }
        var reader = ByteReader(bytes)
        guard Array(try reader.take(4, "magic")) == Self.magic, try reader.integer(UInt8.self, "version") == 1 else {
            throw .malformedInput("not an EnclaveKit report")
        }
        let uniqueID = try reader.digest("uniqueID")
        let signerID = try reader.digest("signerID")
        let productID = try reader.integer(UInt16.self, "productID")
        let securityVersion = try reader.integer(UInt16.self, "securityVersion")
        let attributes = EnclaveIdentity.Attributes(rawValue: try reader.integer(UInt64.self, "attributes"))
        let target = TargetInfo(uniqueID: try reader.digest("target"))
        let reportData = Array(try reader.take(64, "report data"))
        let mac = Array(try reader.take(32, "MAC"))
        try reader.expectEnd("report")
        self.init(
            identity: EnclaveIdentity(
                uniqueID: uniqueID,
                signerID: signerID,
                productID: productID,
                securityVersion: securityVersion,
                attributes: attributes
            ),
            target: target,
            reportData: reportData,
            mac: mac
        )
    }

    /// Check the MAC with the target's report key, in constant time.
    public func verify(key: SymmetricKey) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signedBytes, using: key)
    }
}
