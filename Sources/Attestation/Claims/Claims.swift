public import EnclaveCore

/// What verified evidence says, in one vocabulary for every TEE.
public struct Claims: Hashable, Sendable {
    /// `sgx`, `tdx`, `sev-snp`.
    public var format: String
    /// The measurement (SGX MRENCLAVE).
    public var uniqueID: Digest32
    /// The signer (SGX MRSIGNER).
    public var signerID: Digest32
    public var productID: UInt16
    public var securityVersion: UInt16
    public var debug: Bool
    /// The evidence chains to a simulation root, not to a hardware vendor's.
    public var simulated: Bool
    /// 64 bytes the enclave bound into the evidence.
    public var reportData: [UInt8]
    /// TCB status from collateral (`UpToDate`, `OutOfDate`, …), or `nil` when no collateral was evaluated.
    public var tcbStatus: String?
    public var advisoryIDs: [String]

    public init(
        format: String,
        uniqueID: Digest32,
        signerID: Digest32,
        productID: UInt16,
        securityVersion: UInt16,
        debug: Bool,
        simulated: Bool,
        reportData: [UInt8],
        tcbStatus: String? = nil,
        advisoryIDs: [String] = []
    ) {
        self.format = format
        self.uniqueID = uniqueID
        self.signerID = signerID
        self.productID = productID
        self.securityVersion = securityVersion
        self.debug = debug
        self.simulated = simulated
        self.reportData = reportData
        self.tcbStatus = tcbStatus
        self.advisoryIDs = advisoryIDs
    }

    /// The claims as a JSON-ready dictionary with the keys `enclave verify --json` prints.
    public var jsonObject: [String: Any] {
        [
            "format": format, "uniqueID": uniqueID.hex, "signerID": signerID.hex, "productID": Int(productID),
            "securityVersion": Int(securityVersion), "debug": debug, "simulated": simulated,
            "reportData": Hex.encode(reportData), "tcbStatus": tcbStatus ?? "Unknown", "advisoryIDs": advisoryIDs,
        ]
    }
}
