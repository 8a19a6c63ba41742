/// Remote evidence and where it came from.
///
/// The provider names the source as Linux's configfs-tsm does: `tdx_guest` (an Intel TDX quote), `sev_guest` (an
/// AMD SEV-SNP report, with the host's certificate table as auxiliary data), or `sim_sgx` for EnclaveKit's
/// simulated platform (an SGX DCAP quote v3 chained to this machine's simulated root).
public struct AttestationEvidence: Codable, Hashable, Sendable {
    /// The simulated platform's provider name.
    public static let simulatedProvider = "sim_sgx"

    /// `tdx_guest`, `sev_guest` or `sim_sgx`.
    public var provider: String
    /// The quote or report.
    public var bytes: [UInt8]
    /// Auxiliary data (configfs-tsm `auxblob`: for SEV-SNP the VCEK/VLEK, ASK and ARK table); empty if none.
    public var auxiliaryData: [UInt8]

    /// Wrap evidence as a platform produced it. Nothing is parsed or verified here.
    ///
    /// - Parameters:
    ///   - provider: The source, as configfs-tsm names it: `tdx_guest`, `sev_guest` or ``simulatedProvider``.
    ///   - bytes: The quote or report, unchanged.
    ///   - auxiliaryData: The platform's auxiliary data (for SEV-SNP the certificate table); empty if none.
    public init(provider: String, bytes: [UInt8], auxiliaryData: [UInt8] = []) {
        self.provider = provider
        self.bytes = bytes
        self.auxiliaryData = auxiliaryData
    }
}
