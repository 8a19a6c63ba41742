import ArgumentParser
import Attestation
import AttestationService
import Foundation
import Logging

/// `enclave serve attestation`'s collateral options: where Intel collateral for real SGX and TDX quotes comes from,
/// and whether quotes without it may be verified chain-only.
struct ServeCollateralOptions: ParsableArguments {
    @Option(help: "Collateral for real quotes: FMSPC=FILE|DIR (dcap-qvl bundle or PCCS directory); may repeat.")
    var collateral: [String] = []

    @Option(
        help: """
            A PCCS or Intel PCS (API v4) base URL to fetch collateral from for FMSPCs not given with --collateral; \
            cached in the store until its nextUpdate.
            """
    )
    var pccs: String?

    @Option(
        help: "The root CA CRL's URL (default: PCCS/sgx/certification/v4/rootcacrl; give Intel's with the PCS)."
    )
    var pccsRootCaCrl: String?

    @Flag(
        help: """
            Verify real SGX/TDX quotes that have no collateral up to the PCK chain, signatures and Intel's QE \
            signer only; their tokens say x-enclavekit-tcb-status: NotChecked. Default: such quotes are refused.
            """
    )
    var allowChainOnly = false

    func validate() throws {
        if pccs == nil, pccsRootCaCrl != nil { throw ValidationError("--pccs-root-ca-crl goes with --pccs") }
        for entry in collateral { _ = try Self.fmspcAndPath(entry) }
    }

    static func fmspcAndPath(_ entry: String) throws -> (fmspc: String, path: String) {
        let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0].count == 12, parts[0].allSatisfy(\.isHexDigit) else {
            throw ValidationError("--collateral takes FMSPC=FILE|DIR with a 12-digit hexadecimal FMSPC")
        }
        return (parts[0].lowercased(), parts[1])
    }

    /// Set the collateral sources and the chain-only opt-in.
    func apply(
        to configuration: inout AttestationServiceCore.Configuration,
        store: any ServiceStore,
        logger: Logger
    ) throws {
        for entry in collateral {
            let (fmspc, path) = try Self.fmspcAndPath(entry)
            do {
                configuration.collateral[fmspc] = try Collateral(contentsOf: path)
            } catch {
                throw ValidationError("--collateral \(entry): \(error.reason)")
            }
        }
        if let pccs {
            do {
                configuration.collateralSource = try PCCSCollateralSource(
                    options: PCCSCollateralSource.Options(baseURL: pccs, rootCACRLURL: pccsRootCaCrl),
                    store: store,
                    logger: logger
                )
            } catch let error as ServiceError {
                throw ValidationError(error.message)
            }
        }
        configuration.allowChainOnly = allowChainOnly
        if allowChainOnly {
            logger.warning(
                "--allow-chain-only: real quotes without collateral get tokens without TCB or revocation checks"
            )
        } else if collateral.isEmpty && pccs == nil {
            logger.notice("no --collateral or --pccs: real SGX and TDX quotes will be refused (CollateralUnavailable)")
        }
    }
}
