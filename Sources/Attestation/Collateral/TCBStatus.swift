/// A TCB status as Intel's TCB info and QE identity state it.
public enum TCBStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// The platform has every patch and needs no configuration change.
    case upToDate = "UpToDate"
    /// Patched, but some advisories need software mitigations in the enclave (accepted by default).
    case swHardeningNeeded = "SWHardeningNeeded"
    /// Patched, but the platform's configuration (for example the BIOS) must change for some advisories (accepted by
    /// default).
    case configurationNeeded = "ConfigurationNeeded"
    /// Both a configuration change and software mitigations are needed (accepted by default).
    case configurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
    /// The platform misses security patches; refused unless ``EvidencePolicy/allowOutOfDate``.
    case outOfDate = "OutOfDate"
    /// Out of date and in need of a configuration change; refused unless ``EvidencePolicy/allowOutOfDate``.
    case outOfDateConfigurationNeeded = "OutOfDateConfigurationNeeded"
    /// TDX: the TD was launched on an out-of-date TDX module that has since been updated; relaunch it. Refused unless
    /// ``EvidencePolicy/allowOutOfDate``.
    case tdRelaunchAdvised = "TDRelaunchAdvised"
    /// ``tdRelaunchAdvised``, and a configuration change is needed; refused unless ``EvidencePolicy/allowOutOfDate``.
    case tdRelaunchAdvisedConfigurationNeeded = "TDRelaunchAdvisedConfigurationNeeded"
    /// The platform's or a component's keys are revoked; always refused.
    case revoked = "Revoked"

    /// Whether the status asks for a configuration change.
    public var needsConfiguration: Bool {
        switch self {
        case .configurationNeeded, .configurationAndSWHardeningNeeded, .outOfDateConfigurationNeeded,
            .tdRelaunchAdvisedConfigurationNeeded:
            true
        default: false
        }
    }

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
