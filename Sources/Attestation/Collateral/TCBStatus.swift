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
}
