public import EnclaveCore
public import Foundation

/// Intel's QE identity (version 2, for the SGX or the TDX quoting enclave): which quoting enclave is genuine and how current its SVN is.
public struct QEIdentity: Sendable {
    public struct Level: Sendable {
        public let isvSVN: Int
        public let status: TCBStatus
        public let advisoryIDs: [String]
        /// The level's `tcbDate` (absent: not stated).
        public let tcbDate: String?

        /// A level.
        public init(isvSVN: Int, status: TCBStatus, advisoryIDs: [String], tcbDate: String? = nil) {
            self.isvSVN = isvSVN
            self.status = status
            self.advisoryIDs = advisoryIDs
            self.tcbDate = tcbDate
        }
    }

    /// `QE` (SGX quoting enclave), `TD_QE` (TDX quoting enclave) or `QVE`.
    public let id: String
    public let issueDate: Date
    public let nextUpdate: Date
    public let miscSelect: [UInt8]
    public let miscSelectMask: [UInt8]
    public let attributes: [UInt8]
    public let attributesMask: [UInt8]
    public let mrSigner: [UInt8]
    public let isvProductID: Int
    public let levels: [Level]
    /// `tcbEvaluationDataNumber` (absent: not stated).
    public let tcbEvaluationDataNumber: Int?

    /// Parse the `enclaveIdentity` object (its exact bytes, as signed).
    public init(jsonBytes: [UInt8]) throws(EnclaveError) {
        let json = try JSONFields(bytes: jsonBytes, what: "QE identity")
        let version = try json.int("version")
        guard version == 2 else { throw .malformedInput("QE identity version \(version)") }
        self.id = try json.optionalString("id") ?? "QE"
        self.issueDate = try json.date("issueDate")
        self.nextUpdate = try json.date("nextUpdate")
        self.miscSelect = try json.hex("miscselect", count: 4)
        self.miscSelectMask = try json.hex("miscselectMask", count: 4)
        self.attributes = try json.hex("attributes", count: 16)
        self.attributesMask = try json.hex("attributesMask", count: 16)
        self.mrSigner = try json.hex("mrsigner", count: 32)
        self.isvProductID = try json.int("isvprodid")
        self.tcbEvaluationDataNumber =
            json.has("tcbEvaluationDataNumber") ? try json.int("tcbEvaluationDataNumber") : nil
        var levels: [Level] = []
        for level in try json.objects("tcbLevels") {
            levels.append(
                Level(
                    isvSVN: try level.object("tcb").int("isvsvn"),
                    status: try level.status("tcbStatus"),
                    advisoryIDs: try level.strings("advisoryIDs"),
                    tcbDate: level.has("tcbDate") ? try level.string("tcbDate") : nil
                )
            )
        }
        self.levels = levels
    }
}
