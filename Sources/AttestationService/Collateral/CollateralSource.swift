public import Attestation
public import Foundation

/// Where the service gets Intel collateral (TCB info, QE identity, CRLs) for a real SGX or TDX quote: a static map
/// (``StaticCollateralSource``, `--collateral FMSPC=FILE|DIR`) or a PCCS (``PCCSCollateralSource``, `--pccs URL`).
public protocol CollateralSource: Sendable {
    /// Collateral for `platform` that is valid at `time`, or `nil` when the source has none for this platform.
    /// Throws a ``ServiceError`` when the source cannot give it now (unreachable, a malformed answer, only an
    /// expired copy).
    func collateral(for platform: CollateralPlatform, at time: Date) async throws -> Collateral?
    /// Whether collateral for `platform` valid at `time` is at hand without asking anyone. When it is not, the
    /// service verifies the quote's signatures and PCK chain first, so that forged quotes (any FMSPC) cannot make it
    /// fetch.
    func hasCollateral(for platform: CollateralPlatform, at time: Date) async -> Bool
}

extension CollateralSource {
    /// A source that never fetches has what it has.
    public func hasCollateral(for platform: CollateralPlatform, at time: Date) async -> Bool { true }
}
