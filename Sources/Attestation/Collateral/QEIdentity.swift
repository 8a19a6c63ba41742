public import EnclaveCore
public import Foundation

/// Intel's QE identity (version 2, for the SGX or the TDX quoting enclave): which quoting enclave is genuine and how current its SVN is.
public struct QEIdentity: Sendable {
    public struct Level: Sendable {
        public var isvSVN: Int
        public var status: TCBStatus
        public var advisoryIDs: [String]
    }

    /// `QE` (SGX quoting enclave), `TD_QE` (TDX quoting enclave) or `QVE`.
    public var id: String
    public var issueDate: Date
    public var nextUpdate: Date
    public var miscSelect: [UInt8]
    public var miscSelectMask: [UInt8]
    public var attributes: [UInt8]
    public var attributesMask: [UInt8]
    public var mrSigner: [UInt8]
    public var isvProductID: Int
    public var levels: [Level]

    private struct Raw: Decodable {
        struct TCB: Decodable { var isvsvn: Int }
        struct Level: Decodable {
            var tcb: TCB
            var tcbStatus: TCBStatus
            var advisoryIDs: [String]?
        }
        var id: String?
        var version: Int
        var issueDate: String
        var nextUpdate: String
        var miscselect: String
        var miscselectMask: String
        var attributes: String
        var attributesMask: String
        var mrsigner: String
        var isvprodid: Int
        var tcbLevels: [Level]
    }

    /// Parse the `enclaveIdentity` object (its exact bytes, as signed).
    public init(jsonBytes: [UInt8]) throws(EnclaveError) {
        let raw: Raw
        do {
            raw = try JSONDecoder().decode(Raw.self, from: Data(jsonBytes))
        } catch {
            throw .malformedInput("QE identity does not parse: \(error)")
        }
        guard raw.version == 2 else { throw .malformedInput("QE identity version \(raw.version)") }
        guard let misc = Hex.decode(raw.miscselect), misc.count == 4,
            let miscMask = Hex.decode(raw.miscselectMask), miscMask.count == 4,
            let attributes = Hex.decode(raw.attributes), attributes.count == 16,
            let attributesMask = Hex.decode(raw.attributesMask), attributesMask.count == 16,
            let mrSigner = Hex.decode(raw.mrsigner), mrSigner.count == 32,
            let issue = Collateral.parseDate(raw.issueDate), let next = Collateral.parseDate(raw.nextUpdate)
        else {
            throw .malformedInput("QE identity has a malformed field")
        }
        self.id = raw.id ?? "QE"
        self.issueDate = issue
        self.nextUpdate = next
        self.miscSelect = misc
        self.miscSelectMask = miscMask
        self.attributes = attributes
        self.attributesMask = attributesMask
        self.mrSigner = mrSigner
        self.isvProductID = raw.isvprodid
        self.levels = raw.tcbLevels.map {
            Level(isvSVN: $0.tcb.isvsvn, status: $0.tcbStatus, advisoryIDs: $0.advisoryIDs ?? [])
        }
    }
}
