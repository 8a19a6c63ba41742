public import EnclaveCore

/// The certificate table of an extended SEV-SNP report, as the host supplies it (Linux configfs-tsm `auxblob`,
/// `SNP_GET_EXT_REPORT`): entries of a 16-byte GUID, a `u32` offset and a `u32` length, ended by an all-zero entry;
/// offsets count from the start of the table.
public struct SEVSNPCertificateTable: Sendable {
    /// The certificates by their role.
    public var vcek: AMDCertificate?
    /// The VLEK, a versioned key AMD issued to a cloud provider (signs instead of the VCEK).
    public var vlek: AMDCertificate?
    /// The ASK (or ASVK for a VLEK) that issued the signing key.
    public var ask: AMDCertificate?
    /// The ARK, AMD's root for the processor generation.
    ///
    /// The host supplies the table, so this certificate proves nothing by itself: verification accepts only the roots
    /// it
    /// is given (by default ``AMDRoots/arks``).
    public var ark: AMDCertificate?

    static let vcekGUID = guid("63da758d-e664-4564-adc5-f4b93be8accd")
    static let vlekGUID = guid("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
    static let askGUID = guid("4ab7b379-bbac-4fe4-a02f-05aef327c782")
    static let arkGUID = guid("c0b406a4-a803-4952-9743-3fb6014cd0ae")

    /// The most entries read.
    public static let maxEntries = 64

    /// Parse a table. Entries with unknown GUIDs are skipped; each known one must hold one DER certificate inside
    /// the table's bytes.
    /// - Throws: `EnclaveError` — `limitExceeded` over 1 MiB or ``maxEntries``, `malformedInput` when an entry points
    ///   outside the table or a known entry's certificate does not parse.
    public init(bytes: [UInt8]) throws(EnclaveError) {
        guard bytes.count <= 1 << 20 else { throw .limitExceeded("certificate table larger than 1 MiB") }
        var reader = ByteReader(bytes)
        for index in 0...Self.maxEntries {
            guard index < Self.maxEntries else { throw .limitExceeded("more than \(Self.maxEntries) table entries") }
            let id = Array(try reader.take(16, "table entry GUID"))
            let offset = Int(try reader.integer(UInt32.self, "table entry offset"))
            let length = Int(try reader.integer(UInt32.self, "table entry length"))
            if id.allSatisfy({ $0 == 0 }) && offset == 0 && length == 0 { break }
            guard offset <= bytes.count, length <= bytes.count - offset else {
                throw .malformedInput("a certificate table entry points outside the table")
            }
            let der = Array(bytes[offset..<offset + length])
            switch id {
            case Self.vcekGUID: vcek = try AMDCertificate(derEncoded: der)
            case Self.vlekGUID: vlek = try AMDCertificate(derEncoded: der)
            case Self.askGUID: ask = try AMDCertificate(derEncoded: der)
            case Self.arkGUID: ark = try AMDCertificate(derEncoded: der)
            default: continue
            }
        }
    }

    /// Whether `bytes` start like a certificate table (a known GUID first).
    public static func looksLikeTable(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 24 && [vcekGUID, vlekGUID, askGUID, arkGUID].contains(Array(bytes.prefix(16)))
    }

    /// A GUID's bytes as stored (the first three groups little-endian).
    static func guid(_ text: String) -> [UInt8] {
        let hex = Hex.decode(text.replacingOccurrences(of: "-", with: "")) ?? []
        guard hex.count == 16 else { return [] }
        return hex[0..<4].reversed() + hex[4..<6].reversed() + hex[6..<8].reversed() + hex[8...]
    }
}
