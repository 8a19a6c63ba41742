internal import Foundation
internal import X509

/// Certificates already parsed, each with the exact DER bytes it was parsed from, so that the same certificate met
/// again in a chain (Intel's root in every chain, the PCK CA in the quote and in the PCK CRL's issuer chain) is
/// compared byte for byte instead of parsed again. A certificate is reused only for identical bytes: parsing is a
/// function of the bytes alone, so the result is the one a parse would give. Nothing here is trusted: every
/// certificate is still validated (signatures, windows, constraints, revocation) wherever it is used.
struct KnownCertificates: Sendable {
    private var entries: [(der: [UInt8], certificate: Certificate)] = []

    /// The most certificates kept (a collateral object holds a handful; a chain with more is parsed as usual).
    static let capacity = 16

    /// Intel's SGX root CA, parsed once per process: every DCAP chain ends with it.
    static let intelRoot: KnownCertificates = {
        var known = KnownCertificates()
        known.add(der: IntelRoots.sgxRootCADER, IntelRoots.parsedSGXRootCA)
        return known
    }()

    /// The certificate parsed from exactly `der`, if it is known.
    subscript(der: [UInt8]) -> Certificate? {
        entries.first { $0.der == der }?.certificate
    }

    /// Remember `certificate` as the parse of `der`.
    mutating func add(der: [UInt8], _ certificate: Certificate) {
        guard entries.count < Self.capacity, self[der] == nil else { return }
        entries.append((der, certificate))
    }
}
