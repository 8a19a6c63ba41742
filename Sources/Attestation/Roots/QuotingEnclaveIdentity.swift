internal import EnclaveCore

/// Who a genuine quoting enclave is: signer, product and the MISCSELECT and attributes it must have under their
/// masks, as Intel's QE identity documents state them. The verifier pins Intel's on every DCAP quote, with or without
/// collateral: a quoting enclave that is not Intel's is refused even under a root standing in for Intel's.
public struct QuotingEnclaveIdentity: Hashable, Sendable {
    /// `QE` (SGX) or `TD_QE` (TDX), as in the QE identity's `id`.
    public var id: String
    /// MRSIGNER of the quoting enclave (32 bytes).
    public var mrSigner: [UInt8]
    /// ISVPRODID of the quoting enclave.
    public var isvProductID: UInt16
    /// MISCSELECT (4 bytes, little-endian as in the report) and its mask.
    public var miscSelect: [UInt8]
    /// The MISCSELECT bits that must equal ``miscSelect``.
    public var miscSelectMask: [UInt8]
    /// ATTRIBUTES (16 bytes) and their mask: INIT and PROVISIONKEY set, DEBUG clear; MODE64BIT and XFRM free.
    public var attributes: [UInt8]
    /// The ATTRIBUTES bits that must equal ``attributes``.
    public var attributesMask: [UInt8]

    /// Intel's SGX quoting enclave (QE3), from Intel's QE identity (`id` `QE`, e.g. the dcap-qvl SGX bundle in
    /// Tests/Vectors).
    public static let intelQE = QuotingEnclaveIdentity(
        id: "QE",
        mrSigner: bytes("8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF"),
        isvProductID: 1,
        miscSelect: [0, 0, 0, 0],
        miscSelectMask: [0xFF, 0xFF, 0xFF, 0xFF],
        attributes: bytes("11000000000000000000000000000000"),
        attributesMask: bytes("FBFFFFFFFFFFFFFF0000000000000000")
    )

    /// Intel's TDX quoting enclave, from Intel's TD QE identity (`id` `TD_QE`, e.g. the dcap-qvl TDX bundles and
    /// go-tdx-guest's PCS response in Tests/Vectors).
    public static let intelTDQE = QuotingEnclaveIdentity(
        id: "TD_QE",
        mrSigner: bytes("DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5"),
        isvProductID: 2,
        miscSelect: [0, 0, 0, 0],
        miscSelectMask: [0xFF, 0xFF, 0xFF, 0xFF],
        attributes: bytes("11000000000000000000000000000000"),
        attributesMask: bytes("FBFFFFFFFFFFFFFF0000000000000000")
    )

    /// Intel's quoting enclave for a TDX (`tdx`) or an SGX quote.
    public static func intel(tdx: Bool) -> QuotingEnclaveIdentity { tdx ? intelTDQE : intelQE }

    /// Why `report` is not this quoting enclave, or `nil` when it is.
    func mismatch(_ report: SGXReportBody) -> String? {
        guard report.mrSigner.bytes == mrSigner else { return "its MRSIGNER is not \(id)'s" }
        guard report.isvProductID == isvProductID else {
            return "its ISVPRODID \(report.isvProductID) is not \(id)'s \(isvProductID)"
        }
        let misc = withUnsafeBytes(of: report.miscSelect.littleEndian, Array.init)
        guard zip(misc, miscSelectMask).map({ $0 & $1 }) == miscSelect else { return "its MISCSELECT differs" }
        guard zip(report.attributes, attributesMask).map({ $0 & $1 }) == attributes else {
            return "its attributes differ (a debug quoting enclave, or one without the provisioning key)"
        }
        return nil
    }

    /// Hexadecimal constants, checked by the tests against Intel's documents.
    private static func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex) ?? [] }
}
