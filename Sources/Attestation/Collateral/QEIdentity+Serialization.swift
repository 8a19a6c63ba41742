import EnclaveCore
public import Foundation

extension QEIdentity {
    /// A QE identity (version 2) from its fields, as a TCB signing service issues it.
    public init(
        id: String = "QE",
        issueDate: Date,
        nextUpdate: Date,
        tcbEvaluationDataNumber: Int?,
        miscSelect: [UInt8],
        miscSelectMask: [UInt8],
        attributes: [UInt8],
        attributesMask: [UInt8],
        mrSigner: [UInt8],
        isvProductID: Int,
        levels: [Level]
    ) {
        self.id = id
        self.issueDate = issueDate
        self.nextUpdate = nextUpdate
        self.tcbEvaluationDataNumber = tcbEvaluationDataNumber
        self.miscSelect = miscSelect
        self.miscSelectMask = miscSelectMask
        self.attributes = attributes
        self.attributesMask = attributesMask
        self.mrSigner = mrSigner
        self.isvProductID = isvProductID
        self.levels = levels
    }

    /// The `enclaveIdentity` object as Intel's PCS writes it (compact, its key order, upper-case hexadecimal,
    /// dates to the second, `advisoryIDs` only when there are some): the exact bytes to sign. For Intel's QE and
    /// TD QE identities this is byte for byte what PCS served.
    public func jsonBytes() -> [UInt8] {
        var json = JSONWriter()
        json.object { object in
            object.field("id") { $0.string(id) }
            object.field("version") { $0.integer(2) }
            object.field("issueDate") { $0.date(issueDate) }
            object.field("nextUpdate") { $0.date(nextUpdate) }
            if let tcbEvaluationDataNumber {
                object.field("tcbEvaluationDataNumber") { $0.integer(tcbEvaluationDataNumber) }
            }
            object.field("miscselect") { $0.hex(miscSelect) }
            object.field("miscselectMask") { $0.hex(miscSelectMask) }
            object.field("attributes") { $0.hex(attributes) }
            object.field("attributesMask") { $0.hex(attributesMask) }
            object.field("mrsigner") { $0.hex(mrSigner) }
            object.field("isvprodid") { $0.integer(isvProductID) }
            object.field("tcbLevels") { $0.array(levels) { Self.write($1, to: &$0) } }
        }
        return json.bytes
    }

    /// A level: `{"tcb":{"isvsvn":N},"tcbDate":…,"tcbStatus":…,"advisoryIDs":[…]}`.
    static func write(_ level: Level, to value: inout JSONWriter) {
        value.object { object in
            object.field("tcb") { $0.object { $0.field("isvsvn") { $0.integer(level.isvSVN) } } }
            if let tcbDate = level.tcbDate { object.field("tcbDate") { $0.string(tcbDate) } }
            object.field("tcbStatus") { $0.string(level.status.rawValue) }
            if !level.advisoryIDs.isEmpty {
                object.field("advisoryIDs") { $0.array(level.advisoryIDs) { $0.string($1) } }
            }
        }
    }
}
