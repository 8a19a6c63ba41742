/// The attestation types of the REST API (`POST /attest/{type}`), as MAA names them, and `SimulatedEnclave`.
public enum AttestationType: String, Sendable, CaseIterable {
    /// An SGX DCAP quote (`/attest/SgxEnclave`); tokens say `x-ms-attestation-type` `sgx`.
    case sgxEnclave = "SgxEnclave"
    /// An SGX quote behind Open Enclave's 16-byte report header (`/attest/OpenEnclave`); tokens say `sgx`.
    case openEnclave = "OpenEnclave"
    /// An Intel TDX quote (`/attest/TdxVm`), or Azure vTPM evidence of a TDX VM; tokens say `tdxvm`.
    case tdxVm = "TdxVm"
    /// An AMD SEV-SNP report with its certificates (`/attest/SevSnpVm`), or Azure vTPM evidence of an SEV-SNP VM;
    /// tokens say `sevsnpvm`.
    case sevSnpVm = "SevSnpVm"
    /// EnclaveKit's simulated SGX quote (`/attest/SimulatedEnclave`); tokens say `simulated-sgx`. Refused unless the
    /// service's evidence policy allows simulated platforms.
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
