public import EnclaveCore
public import Foundation

/// Intel TCB info (version 2, and version 3 for SGX and TDX), parsed from the exact bytes whose signature was
/// checked.
public struct TCBInfo: Sendable {
    /// One TCB level: the component SVNs a platform must reach, and the status it then has.
    public struct Level: Sendable {
        public var sgxComponents: [Int]
        public var pceSVN: Int
        /// TDX TCB info only: the TEE TCB SVN components.
        public var tdxComponents: [Int]?
        public var tcbDate: String
        public var status: TCBStatus
        public var advisoryIDs: [String]
    }

    /// The identity of a TDX module (TCB info v3, TDX): its signer and attributes, and levels by module SVN.
    public struct TDXModuleIdentity: Sendable {
        /// `TDX_01`, `TDX_03`, … (the module's major version); empty for the version-0 `tdxModule` entry.
        public var id: String
        public var mrSigner: [UInt8]
        public var attributes: [UInt8]
        public var attributesMask: [UInt8]
        /// Module SVN levels, newest first (empty for the version-0 entry).
        public var levels: [QEIdentity.Level]
    }

    /// `SGX` or `TDX` (version 2 has no ID and is SGX).
    public var id: String
    public var version: Int
    public var issueDate: Date
    public var nextUpdate: Date
    public var fmspc: [UInt8]
    public var pceID: [UInt8]
    public var levels: [Level]
    /// TDX: the version-0 module identity (`tdxModule`).
    public var tdxModule: TDXModuleIdentity?
    /// TDX: module identities by major version (`tdxModuleIdentities`).
    public var tdxModuleIdentities: [TDXModuleIdentity]

    private struct Raw: Decodable {
        struct Component: Decodable { var svn: Int }
        struct TCB: Decodable {
            var sgxtcbcomponents: [Component]?
            var tdxtcbcomponents: [Component]?
            var pcesvn: Int
            // Version 2 spells the components out.
            var sgxtcbcomp01svn: Int?, sgxtcbcomp02svn: Int?, sgxtcbcomp03svn: Int?, sgxtcbcomp04svn: Int?
            var sgxtcbcomp05svn: Int?, sgxtcbcomp06svn: Int?, sgxtcbcomp07svn: Int?, sgxtcbcomp08svn: Int?
            var sgxtcbcomp09svn: Int?, sgxtcbcomp10svn: Int?, sgxtcbcomp11svn: Int?, sgxtcbcomp12svn: Int?
            var sgxtcbcomp13svn: Int?, sgxtcbcomp14svn: Int?, sgxtcbcomp15svn: Int?, sgxtcbcomp16svn: Int?
        }
        struct Level: Decodable {
            var tcb: TCB
            var tcbDate: String
            var tcbStatus: TCBStatus
            var advisoryIDs: [String]?
        }
        struct ModuleLevel: Decodable {
            struct TCB: Decodable { var isvsvn: Int }
            var tcb: TCB
            var tcbDate: String?
            var tcbStatus: TCBStatus
            var advisoryIDs: [String]?
        }
        struct Module: Decodable {
            var id: String?
            var mrsigner: String
            var attributes: String
            var attributesMask: String
            var tcbLevels: [ModuleLevel]?
        }
        var id: String?
        var version: Int
        var issueDate: String
        var nextUpdate: String
        var fmspc: String
        var pceId: String
        var tcbLevels: [Level]
        var tdxModule: Module?
        var tdxModuleIdentities: [Module]?
    }

    /// Parse the `tcbInfo` object (its exact bytes, as signed).
    public init(jsonBytes: [UInt8]) throws(EnclaveError) {
        let raw: Raw
        do {
            raw = try JSONDecoder().decode(Raw.self, from: Data(jsonBytes))
        } catch {
            throw .malformedInput("TCB info does not parse: \(error)")
        }
        guard raw.version == 2 || raw.version == 3 else { throw .malformedInput("TCB info version \(raw.version)") }
        let id = raw.id ?? "SGX"
        guard id == "SGX" || (id == "TDX" && raw.version == 3) else {
            throw .malformedInput("TCB info ID \(id) (version \(raw.version)) is not supported")
        }
        guard let fmspc = Hex.decode(raw.fmspc), fmspc.count == 6, let pceID = Hex.decode(raw.pceId), pceID.count == 2,
            let issue = Collateral.parseDate(raw.issueDate), let next = Collateral.parseDate(raw.nextUpdate)
        else {
            throw .malformedInput("TCB info has a malformed FMSPC, PCE ID or date")
        }
        var levels: [Level] = []
        for level in raw.tcbLevels {
            let t = level.tcb
            let components: [Int]
            if let list = t.sgxtcbcomponents {
                components = list.map(\.svn)
            } else {
                let spelled = [
                    t.sgxtcbcomp01svn, t.sgxtcbcomp02svn, t.sgxtcbcomp03svn, t.sgxtcbcomp04svn, t.sgxtcbcomp05svn,
                    t.sgxtcbcomp06svn, t.sgxtcbcomp07svn, t.sgxtcbcomp08svn, t.sgxtcbcomp09svn, t.sgxtcbcomp10svn,
                    t.sgxtcbcomp11svn, t.sgxtcbcomp12svn, t.sgxtcbcomp13svn, t.sgxtcbcomp14svn, t.sgxtcbcomp15svn,
                    t.sgxtcbcomp16svn,
                ]
                components = spelled.compactMap { $0 }
            }
            guard components.count == 16 else { throw .malformedInput("a TCB level does not have 16 SGX components") }
            let tdx = t.tdxtcbcomponents?.map(\.svn)
            if id == "TDX" {
                guard tdx?.count == 16 else { throw .malformedInput("a TDX TCB level does not have 16 TDX components") }
            }
            levels.append(
                Level(
                    sgxComponents: components,
                    pceSVN: t.pcesvn,
                    tdxComponents: id == "TDX" ? tdx : nil,
                    tcbDate: level.tcbDate,
                    status: level.tcbStatus,
                    advisoryIDs: level.advisoryIDs ?? []
                )
            )
        }
        func module(_ raw: Raw.Module) throws(EnclaveError) -> TDXModuleIdentity {
            guard let signer = Hex.decode(raw.mrsigner), signer.count == 48,
                let attributes = Hex.decode(raw.attributes), attributes.count == 8,
                let mask = Hex.decode(raw.attributesMask), mask.count == 8
            else {
                throw .malformedInput("a TDX module identity has a malformed signer or attributes")
            }
            return TDXModuleIdentity(
                id: (raw.id ?? "").uppercased(),
                mrSigner: signer,
                attributes: attributes,
                attributesMask: mask,
                levels: (raw.tcbLevels ?? []).map {
                    QEIdentity.Level(isvSVN: $0.tcb.isvsvn, status: $0.tcbStatus, advisoryIDs: $0.advisoryIDs ?? [])
                }
            )
        }
        self.tdxModule = try raw.tdxModule.map { (raw) throws(EnclaveError) in try module(raw) }
        var identities: [TDXModuleIdentity] = []
        for raw in raw.tdxModuleIdentities ?? [] { identities.append(try module(raw)) }
        self.tdxModuleIdentities = identities
        self.id = id
        self.version = raw.version
        self.issueDate = issue
        self.nextUpdate = next
        self.fmspc = fmspc
        self.pceID = pceID
        self.levels = levels
    }

    /// The first SGX level (Intel lists them newest first) that the platform's TCB reaches.
    public func matchingLevel(components: [Int], pceSVN: Int) -> Level? {
        levels.first { level in
            zip(components, level.sgxComponents).allSatisfy { $0 >= $1 } && pceSVN >= level.pceSVN
        }
    }

    /// The first TDX level that the platform's SGX TCB and the TD's TEE TCB SVN both reach. When the module's major
    /// version (`teeTCBSVN[1]`) is set, its first two bytes are judged by the module identity instead.
    public func matchingTDXLevel(components: [Int], pceSVN: Int, teeTCBSVN: [UInt8]) -> Level? {
        let start = teeTCBSVN.count > 1 && teeTCBSVN[1] > 0 ? 2 : 0
        return levels.first { level in
            guard let tdx = level.tdxComponents, tdx.count == 16, teeTCBSVN.count == 16,
                zip(components, level.sgxComponents).allSatisfy({ $0 >= $1 }), pceSVN >= level.pceSVN
            else { return false }
            return (start..<16).allSatisfy { Int(teeTCBSVN[$0]) >= tdx[$0] }
        }
    }
}
