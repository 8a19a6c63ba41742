public import Attestation
public import Foundation

/// Where the service gets Intel collateral (TCB info, QE identity, CRLs) for a real SGX or TDX quote: a static map
/// (``StaticCollateralSource``, `--collateral FMSPC=FILE|DIR`) or a PCCS (``PCCSCollateralSource``, `--pccs URL`).
public protocol CollateralSource: Sendable {
    /// Collateral for `platform` that is valid at `time`, or `nil` when the source has none for this platform.
    /// Throws a ``ServiceError`` when the source cannot give it now (unreachable, a malformed answer, only an
    /// expired copy).
    func collateral(for platform: CollateralPlatform, at time: Date) async throws -> Collateral?
}

/// What a quote needs collateral for: its TEE (TCB info and QE identity are per TEE), its FMSPC (TCB info is per
/// FMSPC) and the CA that issued its PCK certificate (the PCK CRL is per CA).
public struct CollateralPlatform: Hashable, Sendable, CustomStringConvertible {
    /// `sgx` or `tdx`.
    public enum TEE: String, Hashable, Sendable {
        case sgx, tdx
    }

    /// Intel's two PCK issuing CAs.
    public enum PCKCA: String, Hashable, Sendable {
        case processor, platform
    }

    public var tee: TEE
    /// Lower-case hexadecimal, 12 digits.
    public var fmspc: String
    public var pckCA: PCKCA

    public init(tee: TEE, fmspc: String, pckCA: PCKCA) {
        self.tee = tee
        self.fmspc = fmspc.lowercased()
        self.pckCA = pckCA
    }

    public var description: String { "\(tee.rawValue.uppercased()) FMSPC \(fmspc) (PCK \(pckCA.rawValue) CA)" }
}
