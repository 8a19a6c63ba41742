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
        var levels: [Level] = []
        for level in try json.objects("tcbLevels") {
            levels.append(
                Level(
                    isvSVN: try level.object("tcb").int("isvsvn"),
                    status: try level.status("tcbStatus"),
                    advisoryIDs: try level.strings("advisoryIDs")
                )
            )
        }
        self.levels = levels
    }
}
