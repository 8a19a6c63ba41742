/// Where an enclave's remote evidence comes from.
public enum EvidenceSource: Sendable {
    /// configfs-tsm when present (a confidential VM), else the simulated platform.
    case automatic
    /// Always the simulated platform's SGX quote.
    case simulated
    /// This configfs-tsm interface.
    case configFSTSM(ConfigFSTSM)
}
