public import EnclaveCore

/// The TD report body of an Intel TDX quote: TDX 1.0 (584 bytes) or TDX 1.5 (648 bytes, adding `TEE_TCB_SVN2` and
/// `MRSERVICETD`).
///
/// Measurements are 48-byte SHA-384 values. `tdAttributes` and `xfam` are the little-endian 64-bit fields as
/// stored; ``isDebug`` and ``septVEDisable`` read their bits.
public struct TDReport: Hashable, Sendable {
    /// The size of a TDX 1.0 body.
    public static let size10 = 584
    /// The size of a TDX 1.5 body.
    public static let size15 = 648

    /// SVNs of the TDX module and its dependencies at launch (index 0: module minor SVN, 1: module major version).
    public let teeTCBSVN: [UInt8]
    /// The measurement of the TDX module (48 bytes), matched against TCB info's module identities.
    public let mrSeam: [UInt8]
    /// The signer of the TDX module (48 bytes; zero for Intel's); must equal the module identity's MRSIGNER.
    public let mrSignerSeam: [UInt8]
    /// The TDX module's attributes (8 bytes), compared under the module identity's mask.
    public let seamAttributes: [UInt8]
    /// The TD's attributes (8 bytes, little-endian): debug (bit 0), `SEPT_VE_DISABLE` (bit 28) and more.
    public let tdAttributes: [UInt8]
    /// The extended features the TD may use (XFAM, 8 bytes, little-endian).
    public let xfam: [UInt8]
    /// The measurement of the TD's initial contents (MRTD, 48 bytes): its firmware image as built by the host.
    public let mrTD: [UInt8]
    /// 48 bytes the host set at launch (MRCONFIGID), usually a hash of the TD's configuration; the service compares it
    /// with the hash of `initTimeData`.
    public let mrConfigID: [UInt8]
    /// 48 bytes the host set at launch naming the TD's owner (MROWNER).
    public let mrOwner: [UInt8]
    /// 48 bytes the host set at launch for owner-defined configuration (MROWNERCONFIG).
    public let mrOwnerConfig: [UInt8]
    /// RTMR0 to RTMR3.
    public let rtmrs: [[UInt8]]
    /// The 64 bytes the TD supplied when requesting the report: where a nonce or a key's hash is bound.
    public let reportData: [UInt8]
    /// TDX 1.5: the SVNs of the TDX module currently running (after a runtime update).
    public let teeTCBSVN2: [UInt8]?
    /// TDX 1.5: the measurement of the service TD bound to this TD, zero if none.
    public let mrServiceTD: [UInt8]?

    /// The exact bytes parsed.
    public let bytes: [UInt8]

    /// TD attribute bit 0: the TD runs in debug mode (its state is not protected).
    public var isDebug: Bool { tdAttributes[0] & 0x01 != 0 }
    /// TD attribute bit 28: EPT violations are not converted to #VE for pending pages.
    public var septVEDisable: Bool { tdAttributes[3] & 0x10 != 0 }
    /// The TD attributes as a 64-bit value.
    public var tdAttributesValue: UInt64 { Self.little(tdAttributes) }
    /// XFAM as a 64-bit value.
    public var xfamValue: UInt64 { Self.little(xfam) }

    /// Parse a TD 1.0 (584 bytes) or TD 1.5 (648 bytes) report body.
    /// - Throws: `EnclaveError` `malformedInput` when `bytes` is neither size.
    public init(bytes: some Collection<UInt8>) throws(EnclaveError) {
        let bytes = Array(bytes)
        guard bytes.count == Self.size10 || bytes.count == Self.size15 else {
            throw .malformedInput("a TD report body is \(Self.size10) or \(Self.size15) bytes, got \(bytes.count)")
        }
        var reader = ByteReader(bytes)
        teeTCBSVN = Array(try reader.take(16, "TEE_TCB_SVN"))
        mrSeam = Array(try reader.take(48, "MRSEAM"))
        mrSignerSeam = Array(try reader.take(48, "MRSIGNERSEAM"))
        seamAttributes = Array(try reader.take(8, "SEAMATTRIBUTES"))
        tdAttributes = Array(try reader.take(8, "TDATTRIBUTES"))
        xfam = Array(try reader.take(8, "XFAM"))
        mrTD = Array(try reader.take(48, "MRTD"))
        mrConfigID = Array(try reader.take(48, "MRCONFIGID"))
        mrOwner = Array(try reader.take(48, "MROWNER"))
        mrOwnerConfig = Array(try reader.take(48, "MROWNERCONFIG"))
        var rtmrs: [[UInt8]] = []
        for _ in 0..<4 { rtmrs.append(Array(try reader.take(48, "RTMR"))) }
        self.rtmrs = rtmrs
        reportData = Array(try reader.take(64, "REPORTDATA"))
        if bytes.count == Self.size15 {
            teeTCBSVN2 = Array(try reader.take(16, "TEE_TCB_SVN2"))
            mrServiceTD = Array(try reader.take(48, "MRSERVICETD"))
        } else {
            teeTCBSVN2 = nil
            mrServiceTD = nil
        }
        try reader.expectEnd("TD report body")
        self.bytes = bytes
    }

    private static func little(_ bytes: [UInt8]) -> UInt64 {
        bytes.prefix(8).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * $1.offset) }
    }
}
