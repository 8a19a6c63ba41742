public import EnclaveCore
public import Foundation

/// Intel TCB info (versions 2 and 3, SGX levels), parsed from the exact bytes whose signature was checked.
public struct TCBInfo: Sendable {
    public struct Level: Sendable {
        public var sgxComponents: [Int]
        public var pceSVN: Int
        public var tcbDate: String
        public var status: TCBStatus
        public var advisoryIDs: [String]
    }

    public var id: String
    public var version: Int
    public var issueDate: Date
    public var nextUpdate: Date
    public var fmspc: [UInt8]
    public var pceID: [UInt8]
    public var levels: [Level]

    private struct Raw: Decodable {
        struct Component: Decodable { var svn: Int }
        struct TCB: Decodable {
            var sgxtcbcomponents: [Component]?
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
        var id: String?
        var version: Int
        var issueDate: String
        var nextUpdate: String
        var fmspc: String
        var pceId: String
        var tcbLevels: [Level]
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
            levels.append(
                Level(
                    sgxComponents: components,
                    pceSVN: t.pcesvn,
                    tcbDate: level.tcbDate,
                    status: level.tcbStatus,
                    advisoryIDs: level.advisoryIDs ?? []
                )
            )
        }
        self.id = raw.id ?? "SGX"
        self.version = raw.version
        self.issueDate = issue
        self.nextUpdate = next
        self.fmspc = fmspc
        self.pceID = pceID
        self.levels = levels
    }

    /// The first level (Intel lists them newest first) that the platform's TCB reaches.
    public func matchingLevel(components: [Int], pceSVN: Int) -> Level? {
        levels.first { level in
            zip(components, level.sgxComponents).allSatisfy { $0 >= $1 } && pceSVN >= level.pceSVN
        }
    }
}
