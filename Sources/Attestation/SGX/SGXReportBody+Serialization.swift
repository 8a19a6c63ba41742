public import EnclaveCore

extension SGXReportBody {
    /// A report body from its fields, encoded as `sgx_report_body_t`. Lengths are checked: 16 bytes of CPUSVN,
    /// ISVEXTPRODID, ATTRIBUTES and ISVFAMILYID, 64 of CONFIGID and REPORTDATA, 106 of ``reserved`` (zero unless
    /// given).
    public init(
        cpuSVN: [UInt8],
        miscSelect: UInt32 = 0,
        isvExtendedProductID: [UInt8] = [UInt8](repeating: 0, count: 16),
        attributes: [UInt8],
        mrEnclave: Digest32,
        mrSigner: Digest32,
        configID: [UInt8] = [UInt8](repeating: 0, count: 64),
        isvProductID: UInt16,
        isvSVN: UInt16,
        configSVN: UInt16 = 0,
        isvFamilyID: [UInt8] = [UInt8](repeating: 0, count: 16),
        reportData: [UInt8],
        reserved: [UInt8] = [UInt8](repeating: 0, count: 106)
    ) throws(EnclaveError) {
        for (field, count, name) in [
            (cpuSVN, 16, "CPUSVN"), (isvExtendedProductID, 16, "ISVEXTPRODID"), (attributes, 16, "ATTRIBUTES"),
            (configID, 64, "CONFIGID"), (isvFamilyID, 16, "ISVFAMILYID"), (reportData, 64, "REPORTDATA"),
            (reserved, 106, "the reserved regions"),
        ] where field.count != count {
            throw .malformedInput("\(name) is \(count) bytes, got \(field.count)")
        }
        try self.init(
            bytes: Self.encode(
                cpuSVN,
                miscSelect,
                isvExtendedProductID,
                attributes,
                mrEnclave,
                mrSigner,
                configID,
                isvProductID,
                isvSVN,
                configSVN,
                isvFamilyID,
                reportData,
                reserved
            )
        )
    }

    /// The attribute flags and XFRM as the 16 bytes of `sgx_attributes_t` (both little-endian).
    public static func attributes(flags: UInt64, xfrm: UInt64) -> [UInt8] {
        var writer = ByteWriter()
        writer.integer(flags)
        writer.integer(xfrm)
        return writer.bytes
    }

    /// The encoding of the fields: `sgx_report_body_t`. Equal to ``bytes`` for every value (the parser refuses
    /// non-zero bytes after MISCSELECT and keeps the other reserved regions in ``reserved``).
    public func serialized() -> [UInt8] {
        Self.encode(
            cpuSVN,
            miscSelect,
            isvExtendedProductID,
            attributes,
            mrEnclave,
            mrSigner,
            configID,
            isvProductID,
            isvSVN,
            configSVN,
            isvFamilyID,
            reportData,
            reserved
        )
    }

    // swift-format-ignore: FunctionParameterCount
    private static func encode(
        _ cpuSVN: [UInt8],
        _ miscSelect: UInt32,
        _ isvExtendedProductID: [UInt8],
        _ attributes: [UInt8],
        _ mrEnclave: Digest32,
        _ mrSigner: Digest32,
        _ configID: [UInt8],
        _ isvProductID: UInt16,
        _ isvSVN: UInt16,
        _ configSVN: UInt16,
        _ isvFamilyID: [UInt8],
        _ reportData: [UInt8],
        _ reserved: [UInt8]
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.append(cpuSVN)
        writer.integer(miscSelect)
        writer.append([UInt8](repeating: 0, count: 12))
        writer.append(isvExtendedProductID)
        writer.append(attributes)
        writer.append(mrEnclave.bytes)
        writer.append(reserved[0..<32])
        writer.append(mrSigner.bytes)
        writer.append(reserved[32..<64])
        writer.append(configID)
        writer.integer(isvProductID)
        writer.integer(isvSVN)
        writer.integer(configSVN)
        writer.append(reserved[64..<106])
        writer.append(isvFamilyID)
        writer.append(reportData)
        return writer.bytes
    }
}
