public import EnclaveCore
public import Foundation

/// Intel's QE identity (version 2, for the SGX or the TDX quoting enclave): which quoting enclave is genuine and how
/// current its SVN is.
public struct QEIdentity: Sendable {
    /// A TCB level of a quoting enclave (or a TDX module): the ISV SVN it must reach and the status it then has.
    public struct Level: Sendable {
        /// The lowest ISV SVN of this level; an enclave at or above it (and below newer levels) has ``status``.
        public let isvSVN: Int
        /// The status of an enclave at this level.
        public let status: TCBStatus
        /// Intel security advisories that apply at this level (`INTEL-SA-…`).
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
    /// When Intel issued this identity.
    public let issueDate: Date
    /// When the next identity is due; verification refuses this one from then on.
    public let nextUpdate: Date
    /// The expected `MISCSELECT` (4 bytes), compared under ``miscSelectMask``.
    public let miscSelect: [UInt8]
    /// The `MISCSELECT` bits that must equal ``miscSelect``.
    public let miscSelectMask: [UInt8]
    /// The expected `ATTRIBUTES` (16 bytes), compared under ``attributesMask``.
    public let attributes: [UInt8]
    /// The `ATTRIBUTES` bits that must equal ``attributes`` (the debug bit among them).
    public let attributesMask: [UInt8]
    /// The MRSIGNER (32 bytes) of Intel's quoting enclave; the quote's QE report must carry exactly this.
    public let mrSigner: [UInt8]
    /// The quoting enclave's ISV product ID.
    public let isvProductID: Int
    /// The TCB levels, newest first; the first one the quoting enclave's ISV SVN reaches gives its status.
    public let levels: [Level]
    /// `tcbEvaluationDataNumber` (absent: not stated).
    public let tcbEvaluationDataNumber: Int?

    /// Parse the `enclaveIdentity` object (its exact bytes, as signed).
    /// - Throws: `EnclaveError` `malformedInput` when it is not version 2 or a field is missing or malformed.
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
