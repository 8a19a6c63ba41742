public import Attestation
public import Foundation

/// Collateral the operator gave by FMSPC (`--collateral FMSPC=FILE|DIR`): one bundle per FMSPC, used for whichever
/// TEE and PCK CA the quote has (a bundle holds one TCB info, one QE identity and one PCK CRL). Its dates are checked
/// by the verifier: an expired bundle makes quotes fail verification, it is not skipped.
public struct StaticCollateralSource: CollateralSource {
    /// Collateral by lower-case FMSPC.
    public var collateral: [String: Collateral]

    /// A source holding `collateral` by FMSPC (hexadecimal, any case; the first of two spellings of one FMSPC wins).
    ///
    /// Nothing is verified here: each bundle is checked by the verifier, on every quote, like fetched collateral.
    public init(_ collateral: [String: Collateral]) {
        self.collateral = Dictionary(collateral.map { ($0.key.lowercased(), $0.value) }) { first, _ in first }
    }

    public func collateral(for platform: CollateralPlatform, at time: Date) async throws -> Collateral? {
        collateral[platform.fmspc]
    }
}
