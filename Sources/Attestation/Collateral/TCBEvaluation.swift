internal import EnclaveCore

// TCB evaluation, in one place: which TCB level of Intel's TCB info a platform reaches (SGX and TDX side by side),
// the TDX module's level, and how the statuses of the platform, the quoting enclave and the TDX module fold into
// the one status a quote gets.

// MARK: Levels

extension TCBInfo {
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

// MARK: Folding statuses

extension TCBStatus {
    /// The platform status after folding in the statuses of other components (the quoting enclave, the TDX module)
    /// as Intel's verifier does: an out-of-date component makes an up-to-date (or hardening-needed) platform out of
    /// date and a configuration-needed one out of date with configuration needed; a revoked component revokes it.
    public func converged(with components: [TCBStatus]) -> TCBStatus {
        if components.contains(.revoked) { return .revoked }
        guard components.contains(where: { $0 == .outOfDate || $0 == .outOfDateConfigurationNeeded }) else {
            return self
        }
        switch self {
        case .upToDate, .swHardeningNeeded: return .outOfDate
        case .configurationNeeded, .configurationAndSWHardeningNeeded: return .outOfDateConfigurationNeeded
        default: return self
        }
    }

    /// ``converged(with:)`` with the quoting enclave's status.
    public func combined(withQE qe: TCBStatus) -> TCBStatus { converged(with: [qe]) }

    /// TDX 1.5: the status at launch combined with the status of the module running now. A TD launched on an
    /// out-of-date module that now runs on a current one is advised to relaunch.
    public static func relaunchStatus(launch: TCBStatus, current: TCBStatus) -> TCBStatus {
        guard launch == .outOfDate || launch == .outOfDateConfigurationNeeded else { return launch }
        switch current {
        case .upToDate, .swHardeningNeeded, .configurationNeeded, .configurationAndSWHardeningNeeded:
            return launch.needsConfiguration || current.needsConfiguration
                ? .tdRelaunchAdvisedConfigurationNeeded : .tdRelaunchAdvised
        default:
            return launch
        }
    }
}

// MARK: A quote's TCB status

extension DCAPQuote {
    /// The TCB status as Intel specifies it: the platform's level (SGX components and PCESVN; for TDX also the TEE
    /// TCB SVN), the TDX module's level, the quoting enclave's, and for TDX 1.5 the relaunch advice.
    func evaluateTCB(
        _ tcbInfo: TCBInfo,
        platform: SGXExtensions,
        qeLevel: QEIdentity.Level
    ) throws -> (status: TCBStatus, advisoryIDs: [String]) {
        switch body {
        case .sgx: try evaluateSGXTCB(tcbInfo, platform: platform, qeLevel: qeLevel)
        case .td(let td): try evaluateTDXTCB(tcbInfo, td: td, platform: platform, qeLevel: qeLevel)
        }
    }

    /// SGX: the platform's level (SGX components and PCESVN) folded with the quoting enclave's.
    func evaluateSGXTCB(
        _ tcbInfo: TCBInfo,
        platform: SGXExtensions,
        qeLevel: QEIdentity.Level
    ) throws -> (status: TCBStatus, advisoryIDs: [String]) {
        guard tcbInfo.id == "SGX" else {
            throw VerificationFailure(check: .tcbLevel, reason: "the TCB info is for \(tcbInfo.id), not SGX")
        }
        guard let level = tcbInfo.matchingLevel(components: platform.tcbComponents, pceSVN: platform.pceSVN) else {
            throw VerificationFailure(check: .tcbLevel, reason: "no matching TCB level")
        }
        let advisories = Self.merged([level.advisoryIDs, qeLevel.advisoryIDs])
        return (level.status.converged(with: [qeLevel.status]), advisories)
    }

    /// TDX: the platform's level (SGX components, PCESVN and the TEE TCB SVN at launch) folded with the TDX
    /// module's, for TDX 1.5 the relaunch advice (the module running now against the one at launch), and last the
    /// quoting enclave's.
    func evaluateTDXTCB(
        _ tcbInfo: TCBInfo,
        td: TDReport,
        platform: SGXExtensions,
        qeLevel: QEIdentity.Level
    ) throws -> (status: TCBStatus, advisoryIDs: [String]) {
        guard tcbInfo.id == "TDX" else {
            throw VerificationFailure(check: .tcbLevel, reason: "the TCB info is for \(tcbInfo.id), not TDX")
        }
        func status(teeTCBSVN: [UInt8]) throws -> (TCBStatus, [String], [String]) {
            guard
                let level = tcbInfo.matchingTDXLevel(
                    components: platform.tcbComponents,
                    pceSVN: platform.pceSVN,
                    teeTCBSVN: teeTCBSVN
                )
            else {
                throw VerificationFailure(check: .tcbLevel, reason: "no matching TCB level")
            }
            let module = try tdxModuleLevel(tcbInfo, td: td, teeTCBSVN: teeTCBSVN)
            let components = module.map { [$0.status] } ?? []
            return (level.status.converged(with: components), level.advisoryIDs, module?.advisoryIDs ?? [])
        }
        let (launch, platformIDs, moduleIDs) = try status(teeTCBSVN: td.teeTCBSVN)
        let advisories = Self.merged([platformIDs, qeLevel.advisoryIDs, moduleIDs])
        var result = launch
        if let current = td.teeTCBSVN2, current.contains(where: { $0 != 0 }), current != td.teeTCBSVN,
            let (now, _, _) = try? status(teeTCBSVN: current)
        {
            result = TCBStatus.relaunchStatus(launch: launch, current: now)
        }
        // The quoting enclave folds in last, as in Intel's verifier (relaunch advice stands).
        return (result.converged(with: [qeLevel.status]), advisories)
    }

    /// The TDX module: its signer and attributes against the module identity for its major version
    /// (`teeTCBSVN[1]`; the `tdxModule` entry for version 0), and the level its minor SVN reaches (`nil` for
    /// version 0, which has no levels of its own).
    func tdxModuleLevel(_ tcbInfo: TCBInfo, td: TDReport, teeTCBSVN: [UInt8]) throws -> QEIdentity.Level? {
        let major = teeTCBSVN[1]
        let identity: TCBInfo.TDXModuleIdentity
        if major == 0 {
            guard let module = tcbInfo.tdxModule else {
                throw VerificationFailure(check: .tdxModule, reason: "the TCB info has no TDX module identity")
            }
            identity = module
        } else {
            let id = "TDX_" + Hex.encode([major]).uppercased()
            guard let module = tcbInfo.tdxModuleIdentities.first(where: { $0.id == id }) else {
                throw VerificationFailure(check: .tdxModule, reason: "the TCB info has no identity \(id)")
            }
            identity = module
        }
        guard td.mrSignerSeam == identity.mrSigner,
            zip(td.seamAttributes, identity.attributesMask).map({ $0 & $1 }) == identity.attributes
        else {
            throw VerificationFailure(
                check: .tdxModule,
                reason: "the TDX module's signer or attributes differ from its identity"
            )
        }
        guard major > 0 else { return nil }
        guard let level = identity.levels.first(where: { Int(teeTCBSVN[0]) >= $0.isvSVN }) else {
            throw VerificationFailure(check: .tdxModule, reason: "the TDX module's SVN is below every level")
        }
        return level
    }

    /// Advisory IDs in order of first appearance, each once.
    private static func merged(_ lists: [[String]]) -> [String] {
        var advisories: [String] = []
        for id in lists.joined() where !advisories.contains(id) { advisories.append(id) }
        return advisories
    }
}
