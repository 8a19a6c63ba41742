import EnclaveCore
public import Foundation

extension TCBInfo {
    /// TCB info from its fields, as a TCB signing service issues it. Version 3 (SGX or TDX) or 2 (SGX).
    public init(
        id: String = "SGX",
        version: Int = 3,
        issueDate: Date,
        nextUpdate: Date,
        fmspc: [UInt8],
        pceID: [UInt8],
        tcbType: Int? = 0,
        tcbEvaluationDataNumber: Int?,
        levels: [Level],
        tdxModule: TDXModuleIdentity? = nil,
        tdxModuleIdentities: [TDXModuleIdentity] = []
    ) {
        self.id = id
        self.version = version
        self.issueDate = issueDate
        self.nextUpdate = nextUpdate
        self.fmspc = fmspc
        self.pceID = pceID
        self.tcbType = tcbType
        self.tcbEvaluationDataNumber = tcbEvaluationDataNumber
        self.levels = levels
        self.tdxModule = tdxModule
        self.tdxModuleIdentities = tdxModuleIdentities
    }

    /// The `tcbInfo` object as Intel's PCS writes it (compact, its key order, upper-case hexadecimal, dates to the
    /// second, `advisoryIDs` only when there are some): the exact bytes to sign. For Intel's SGX TCB info this is
    /// byte for byte what PCS served; Intel's TDX components also carry `category` and `type` names, which are not
    /// kept, so TDX TCB info parses back to the same values rather than the same bytes.
    public func jsonBytes() -> [UInt8] {
        var json = JSONWriter()
        json.object { object in
            if version >= 3 { object.field("id") { $0.string(id) } }
            object.field("version") { $0.integer(version) }
            object.field("issueDate") { $0.date(issueDate) }
            object.field("nextUpdate") { $0.date(nextUpdate) }
            object.field("fmspc") { $0.hex(fmspc) }
            object.field("pceId") { $0.hex(pceID) }
            if let tcbType { object.field("tcbType") { $0.integer(tcbType) } }
            if let tcbEvaluationDataNumber {
                object.field("tcbEvaluationDataNumber") { $0.integer(tcbEvaluationDataNumber) }
            }
            if let tdxModule { object.field("tdxModule") { Self.write(tdxModule, to: &$0, withLevels: false) } }
            if !tdxModuleIdentities.isEmpty {
                object.field("tdxModuleIdentities") { value in
                    value.array(tdxModuleIdentities) { Self.write($1, to: &$0, withLevels: true) }
                }
            }
            object.field("tcbLevels") { value in
                value.array(levels) { value, level in
                    value.object { object in
                        object.field("tcb") { value in
                            value.object { tcb in
                                if version >= 3 {
                                    tcb.field("sgxtcbcomponents") {
                                        $0.array(level.sgxComponents) { Self.svn($1, &$0) }
                                    }
                                } else {
                                    for (index, svn) in level.sgxComponents.enumerated() {
                                        let name = "sgxtcbcomp" + (index < 9 ? "0" : "") + "\(index + 1)svn"
                                        tcb.field(name) { $0.integer(svn) }
                                    }
                                }
                                tcb.field("pcesvn") { $0.integer(level.pceSVN) }
                                if let tdx = level.tdxComponents {
                                    tcb.field("tdxtcbcomponents") { $0.array(tdx) { Self.svn($1, &$0) } }
                                }
                            }
                        }
                        object.field("tcbDate") { $0.string(level.tcbDate) }
                        object.field("tcbStatus") { $0.string(level.status.rawValue) }
                        if !level.advisoryIDs.isEmpty {
                            object.field("advisoryIDs") { $0.array(level.advisoryIDs) { $0.string($1) } }
                        }
                    }
                }
            }
        }
        return json.bytes
    }

    private static func svn(_ svn: Int, _ value: inout JSONWriter) {
        value.object { $0.field("svn") { $0.integer(svn) } }
    }

    private static func write(_ module: TDXModuleIdentity, to value: inout JSONWriter, withLevels: Bool) {
        value.object { object in
            if withLevels { object.field("id") { $0.string(module.id) } }
            object.field("mrsigner") { $0.hex(module.mrSigner) }
            object.field("attributes") { $0.hex(module.attributes) }
            object.field("attributesMask") { $0.hex(module.attributesMask) }
            if withLevels {
                object.field("tcbLevels") { $0.array(module.levels) { QEIdentity.write($1, to: &$0) } }
            }
        }
    }
}
