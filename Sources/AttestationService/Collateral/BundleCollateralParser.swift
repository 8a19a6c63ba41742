public import Attestation
public import EnclaveCore
public import Foundation
internal import Synchronization

/// Collateral read from dcap-qvl JSON bundles (Attestation's `Collateral(dcapQVLJSON:)`), parsed once per
/// distinct bundle. The simulated platform issues one bundle per TCB state, so `enclave serve attestation
/// --allow-simulated` costs one byte comparison per request here instead of a JSON, hexadecimal and PEM parse.
/// Bundles are compared by their bytes, never by identity: a bundle that differs in any byte is parsed anew, and
/// nothing is trusted because it was parsed (the verifier checks every signature of what it is given).
public final class BundleCollateralParser: Sendable {
    private let last = Mutex<(bytes: [UInt8], collateral: Collateral)?>(nil)

    /// A parser that remembers the last bundle it parsed.
    public init() {}

    /// The collateral `bundle` holds: the one parsed before if `bundle` has exactly the same bytes, else parsed now.
    /// - Throws: `EnclaveError` as `Collateral(dcapQVLJSON:)` does.
    public func collateral(_ bundle: [UInt8]) throws(EnclaveError) -> Collateral {
        if let cached = last.withLock({ $0 }), cached.bytes == bundle { return cached.collateral }
        let parsed = try Collateral(dcapQVLJSON: bundle)
        last.withLock { $0 = (bundle, parsed) }
        return parsed
    }
}

extension AttestationServiceCore.Configuration {
    /// Simulated collateral as `enclave serve attestation --allow-simulated` provides it: the bundle `bundle`
    /// gives for a time (the simulated platform's `collateralJSON(at:)`, issued once per TCB state), parsed once
    /// per distinct bundle, so that a served request neither re-issues nor re-parses collateral and the
    /// verification cache, which keys on the collateral's signatures and CRLs, holds across requests.
    public static func simulatedCollateral(
        bundle: @escaping @Sendable (Date) throws -> [UInt8]
    ) -> @Sendable (Date) throws -> Collateral {
        let parser = BundleCollateralParser()
        return { time in try parser.collateral(bundle(time)) }
    }
}
