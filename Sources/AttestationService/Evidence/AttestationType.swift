/// The attestation types of the REST API (`POST /attest/{type}`), as MAA names them, and `SimulatedEnclave`.
public enum AttestationType: String, Sendable, CaseIterable {
    case sgxEnclave = "SgxEnclave"
    case openEnclave = "OpenEnclave"
    case tdxVm = "TdxVm"
    case sevSnpVm = "SevSnpVm"
    case simulatedEnclave = "SimulatedEnclave"

    /// The value of `x-ms-attestation-type`.
    var claimValue: String {
        switch self {
        case .sgxEnclave: "sgx"
        case .openEnclave: "sgx"
        case .tdxVm: "tdxvm"
        case .sevSnpVm: "sevsnpvm"
        case .simulatedEnclave: "simulated-sgx"
        }
    }

    /// Parse a path component, case-insensitively as MAA does.
    init?(pathComponent: String) {
        guard let match = Self.allCases.first(where: { $0.rawValue.lowercased() == pathComponent.lowercased() }) else {
            return nil
        }
        self = match
    }
}
