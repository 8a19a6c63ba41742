extension SEVSNPCertificateTable {
    /// The table as the kernel's configfs-tsm `auxblob` lays it out: one entry (GUID, offset, length, little-endian
    /// 32-bit) per certificate, a zero entry, then the DER certificates in order. What ``init(bytes:)`` reads.
    package static func encode(vcek: [UInt8], ask: [UInt8], ark: [UInt8]) -> [UInt8] {
        let certificates = [(vcekGUID, vcek), (askGUID, ask), (arkGUID, ark)]
        var offset = (certificates.count + 1) * 24
        var table: [UInt8] = []
        for (guid, der) in certificates {
            table += guid
            table += withUnsafeBytes(of: UInt32(offset).littleEndian, Array.init)
            table += withUnsafeBytes(of: UInt32(der.count).littleEndian, Array.init)
            offset += der.count
        }
        table += [UInt8](repeating: 0, count: 24)
        return certificates.reduce(into: table) { $0 += $1.1 }
    }
}
