/// A TCB status as Intel's TCB info and QE identity state it.
public enum TCBStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case upToDate = "UpToDate"
    case swHardeningNeeded = "SWHardeningNeeded"
    case configurationNeeded = "ConfigurationNeeded"
    case configurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
    case outOfDate = "OutOfDate"
    case outOfDateConfigurationNeeded = "OutOfDateConfigurationNeeded"
    case tdRelaunchAdvised = "TDRelaunchAdvised"
    case revoked = "Revoked"

    /// The platform status after folding in the quoting enclave's status: an out-of-date QE makes the whole TCB
    /// out of date (keeping "configuration needed"), a revoked QE revokes it.
    public func combined(withQE qe: TCBStatus) -> TCBStatus {
        switch qe {
        case .revoked: return .revoked
        case .outOfDate, .outOfDateConfigurationNeeded:
            switch self {
            case .upToDate, .swHardeningNeeded, .outOfDate: return .outOfDate
            case .configurationNeeded, .configurationAndSWHardeningNeeded, .outOfDateConfigurationNeeded:
                return .outOfDateConfigurationNeeded
            case .tdRelaunchAdvised, .revoked: return self
            }
        default: return self
        }
    }
}
