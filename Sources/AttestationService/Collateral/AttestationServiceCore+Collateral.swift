internal import Attestation
internal import AttestationAPI
internal import EnclaveCore
internal import Foundation
internal import X509

extension AttestationServiceCore {
    /// The error codes that mean "no usable collateral for this quote": without the operator's opt-in they refuse
    /// the quote, with it the quote is verified chain-only.
    static let collateralMissingCodes: Set<String> = ["CollateralUnavailable", "CollateralFetchFailed"]

    /// The token's `x-enclavekit-collateral` claim when the TCB was evaluated against Intel's collateral.
    static let collateralChecked = "checked"
    /// The token's `x-enclavekit-collateral` claim after the operator's chain-only opt-in.
    static let collateralNotChecked = "chain-only: TCB status and revocation not checked"
    /// The token's TCB status claims after the operator's chain-only opt-in.
    static let tcbNotChecked = "NotChecked"

    /// The collateral for `quote`'s platform: the static map first, then the configured source.
    func collateralForQuote(_ quote: DCAPQuote, at time: Date) async throws -> Collateral {
        let platform = try Self.collateralPlatform(quote)
        if let found = configuration.collateral[platform.fmspc] { return found }
        if let source = configuration.collateralSource {
            if await !source.hasCollateral(for: platform, at: time) {
                // Only a quote that verifies up to its signatures makes the service ask the PCCS (whose FMSPC
                // anyone can write into a certificate of their own).
                let anchors = configuration.intelAnchors.map {
                    DCAPQuote.TrustAnchor(certificate: $0, simulated: false)
                }
                _ = try await quote.verifyChainOnly(anchors: anchors, at: time)
            }
            if let found = try await source.collateral(for: platform, at: time) { return found }
        }
        throw ServiceError.badRequest(
            "CollateralUnavailable",
            "this service has no collateral (TCB info, QE identity, CRLs) for \(platform); "
                + "configure it with --collateral or --pccs"
        )
    }

    /// The quote's TEE, FMSPC and PCK issuing CA, from its PCK certificate. An SGX extension that does not parse
    /// means no collateral can be chosen: `CollateralUnavailable`.
    static func collateralPlatform(_ quote: DCAPQuote) throws -> CollateralPlatform {
        guard let leaf = try quote.pckChain().first else {
            throw ServiceError.badRequest("InvalidEvidence", "the quote carries no PCK certificate")
        }
        guard let value = leaf.extensions.first(where: { $0.oid == SGXExtensions.oid })?.value else {
            throw ServiceError.badRequest(
                "CollateralUnavailable",
                "the PCK certificate has no SGX extension: no FMSPC to choose collateral by"
            )
        }
        let fmspc: [UInt8]
        do {
            fmspc = try SGXExtensions(derEncoded: value).fmspc
        } catch {
            throw ServiceError.badRequest(
                "CollateralUnavailable",
                "the PCK certificate's SGX extension does not parse (\(error)): no FMSPC to choose collateral by"
            )
        }
        let issuer = String(describing: leaf.issuer)
        let ca: CollateralPlatform.PCKCA
        if issuer.contains("CN=Intel SGX PCK Processor CA") {
            ca = .processor
        } else if issuer.contains("CN=Intel SGX PCK Platform CA") {
            ca = .platform
        } else {
            throw ServiceError.badRequest(
                "CollateralUnavailable",
                "the PCK certificate's issuer is neither Intel's PCK Processor CA nor its Platform CA: no PCK CRL "
                    + "to choose"
            )
        }
        return CollateralPlatform(tee: quote.isTDX ? .tdx : .sgx, fmspc: Hex.encode(fmspc), pckCA: ca)
    }

    /// The token claims that say how the TCB was checked. Real SGX and TDX evidence without a TCB status exists only
    /// after the chain-only opt-in; anything else is refused rather than given a token without a TCB status.
    func collateralClaims(_ claims: Claims) throws -> [String: TokenValue] {
        guard !claims.simulated, claims.sgx != nil || claims.tdx != nil else { return [:] }
        if claims.tcbStatus != nil { return ["x-enclavekit-collateral": .string(Self.collateralChecked)] }
        guard configuration.allowChainOnly, !claims.notChecked.isEmpty else {
            throw ServiceError.badRequest(
                "CollateralUnavailable",
                "real SGX or TDX evidence was verified without collateral and this service does not allow chain-only "
                    + "verification"
            )
        }
        return [
            "x-enclavekit-tcb-status": .string(Self.tcbNotChecked),
            "attester_tcb_status": .string(Self.tcbNotChecked),
            "x-enclavekit-collateral": .string(Self.collateralNotChecked),
            "x-enclavekit-not-checked": .array(claims.notChecked.map(TokenValue.string)),
        ]
    }
}
