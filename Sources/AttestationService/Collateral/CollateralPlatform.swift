/// What a quote needs collateral for: its TEE (TCB info and QE identity are per TEE), its FMSPC (TCB info is per
/// FMSPC) and the CA that issued its PCK certificate (the PCK CRL is per CA).
public struct CollateralPlatform: Hashable, Sendable, CustomStringConvertible {
    /// `sgx` or `tdx`.
    public enum TEE: String, Hashable, Sendable {
        /// `sgx`: an SGX quote (QE identity `QE`); `tdx`: a TDX quote (QE identity `TD_QE`, TDX TCB info).
        case sgx, tdx
    }

    /// Intel's two PCK issuing CAs.
    public enum PCKCA: String, Hashable, Sendable {
        /// `processor`: Intel SGX PCK Processor CA; `platform`: Intel SGX PCK Platform CA (multi-package platforms).
        case processor, platform
    }

    /// The TEE: which TCB info and QE identity.
    public var tee: TEE
    /// The FMSPC from the PCK certificate, lower-case hexadecimal (12 digits): which TCB info.
    public var fmspc: String
    /// The CA that issued the PCK certificate: which PCK CRL.
    public var pckCA: PCKCA

    /// Name what a quote needs collateral for.
    ///
    /// - Parameters:
    ///   - tee: The quote's TEE.
    ///   - fmspc: The FMSPC from the PCK certificate, in hexadecimal (lower-cased here).
    ///   - pckCA: The CA that issued the PCK certificate.
    public init(tee: TEE, fmspc: String, pckCA: PCKCA) {
        self.tee = tee
        self.fmspc = fmspc.lowercased()
        self.pckCA = pckCA
    }

    public var description: String { "\(tee.rawValue.uppercased()) FMSPC \(fmspc) (PCK \(pckCA.rawValue) CA)" }
}
