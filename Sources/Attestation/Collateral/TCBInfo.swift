public import EnclaveCore
public import Foundation

/// Intel TCB info (version 2, and version 3 for SGX and TDX), parsed from the exact bytes whose signature was
/// checked.
public struct TCBInfo: Sendable {
    /// One TCB level: the component SVNs a platform must reach, and the status it then has.
    public struct Level: Sendable {
        /// The 16 SGX TCB component SVNs; the platform's CPUSVN must reach each one.
        public let sgxComponents: [Int]
        /// The PCE SVN the platform must reach.
        public let pceSVN: Int
        /// TDX TCB info only: the TEE TCB SVN components.
        public let tdxComponents: [Int]?
        /// The date of this TCB level (ISO 8601, as Intel writes it).
        public let tcbDate: String
        /// The status of a platform at this level.
        public let status: TCBStatus
        /// Intel security advisories that apply at this level (`INTEL-SA-…`).
        public let advisoryIDs: [String]

        /// A level.
        public init(
            sgxComponents: [Int],
            pceSVN: Int,
            tdxComponents: [Int]? = nil,
            tcbDate: String,
            status: TCBStatus,
            advisoryIDs: [String] = []
        ) {
            self.sgxComponents = sgxComponents
            self.pceSVN = pceSVN
            self.tdxComponents = tdxComponents
            self.tcbDate = tcbDate
            self.status = status
            self.advisoryIDs = advisoryIDs
        }
    }

    /// `SGX` or `TDX` (version 2 has no ID and is SGX).
    public let id: String
    /// The TCB info format version: 2 or 3.
    public let version: Int
    /// When Intel issued this TCB info.
    public let issueDate: Date
    /// When the next TCB info is due; verification refuses this one from then on.
    public let nextUpdate: Date
    /// The platform family (6 bytes) this TCB info is for; it must equal the FMSPC in the PCK certificate.
    public let fmspc: [UInt8]
    /// The PCE ID (2 bytes); it must equal the PCE ID in the PCK certificate.
    public let pceID: [UInt8]
    /// The TCB levels, newest first; the first one the platform reaches in every component gives its status.
    public let levels: [Level]
    /// TDX: the version-0 module identity (`tdxModule`).
    public let tdxModule: TDXModuleIdentity?
    /// TDX: module identities by major version (`tdxModuleIdentities`).
    public let tdxModuleIdentities: [TDXModuleIdentity]
    /// `tcbType` (absent: not stated).
    public let tcbType: Int?
    /// `tcbEvaluationDataNumber` (absent: not stated).
    public let tcbEvaluationDataNumber: Int?

    /// Parse the `tcbInfo` object (its exact bytes, as signed).
    /// - Throws: `EnclaveError` `malformedInput` for another version or ID, a level without 16 components, or a missing
    ///   or malformed field.
    public init(jsonBytes: [UInt8]) throws(EnclaveError) {
        let json = try JSONFields(bytes: jsonBytes, what: "TCB info")
        let version = try json.int("version")
        guard version == 2 || version == 3 else { throw .malformedInput("TCB info version \(version)") }
        let id = try json.optionalString("id") ?? "SGX"
        guard id == "SGX" || (id == "TDX" && version == 3) else {
            throw .malformedInput("TCB info ID \(id) (version \(version)) is not supported")
        }
        var levels: [Level] = []
        for level in try json.objects("tcbLevels") {
            let tcb = try level.object("tcb")
            var components: [Int] = []
            if tcb.has("sgxtcbcomponents") {
                components = try tcb.svns("sgxtcbcomponents")
            } else {
                for index in 1...16 {
                    components.append(try tcb.int("sgxtcbcomp" + (index < 10 ? "0" : "") + "\(index)svn"))
                }
            }
            guard components.count == 16 else { throw .malformedInput("a TCB level does not have 16 SGX components") }
            var tdx: [Int]?
            if id == "TDX" {
                let list = try tcb.svns("tdxtcbcomponents")
                guard list.count == 16 else { throw .malformedInput("a TDX TCB level does not have 16 TDX components") }
                tdx = list
            }
            levels.append(
                Level(
                    sgxComponents: components,
                    pceSVN: try tcb.int("pcesvn"),
                    tdxComponents: tdx,
                    tcbDate: try level.string("tcbDate"),
                    status: try level.status("tcbStatus"),
                    advisoryIDs: try level.strings("advisoryIDs")
                )
            )
        }
        func module(_ raw: JSONFields) throws(EnclaveError) -> TDXModuleIdentity {
            var moduleLevels: [QEIdentity.Level] = []
            if raw.has("tcbLevels") {
                for level in try raw.objects("tcbLevels") {
                    moduleLevels.append(
                        QEIdentity.Level(
                            isvSVN: try level.object("tcb").int("isvsvn"),
                            status: try level.status("tcbStatus"),
                            advisoryIDs: try level.strings("advisoryIDs"),
                            tcbDate: level.has("tcbDate") ? try level.string("tcbDate") : nil
                        )
                    )
                }
            }
            return TDXModuleIdentity(
                id: (try raw.optionalString("id") ?? "").uppercased(),
                mrSigner: try raw.hex("mrsigner", count: 48),
                attributes: try raw.hex("attributes", count: 8),
                attributesMask: try raw.hex("attributesMask", count: 8),
                levels: moduleLevels
            )
        }
        self.tdxModule = json.has("tdxModule") ? try module(try json.object("tdxModule")) : nil
        var identities: [TDXModuleIdentity] = []
        if json.has("tdxModuleIdentities") {
            for raw in try json.objects("tdxModuleIdentities") { identities.append(try module(raw)) }
        }
        self.tdxModuleIdentities = identities
        self.id = id
        self.version = version
        self.issueDate = try json.date("issueDate")
        self.nextUpdate = try json.date("nextUpdate")
        self.fmspc = try json.hex("fmspc", count: 6)
        self.pceID = try json.hex("pceId", count: 2)
        self.levels = levels
        self.tcbType = json.has("tcbType") ? try json.int("tcbType") : nil
        self.tcbEvaluationDataNumber =
            json.has("tcbEvaluationDataNumber") ? try json.int("tcbEvaluationDataNumber") : nil
    }
}
