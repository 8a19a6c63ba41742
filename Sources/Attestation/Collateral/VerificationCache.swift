internal import Crypto
internal import Foundation
internal import Synchronization
internal import X509

/// Per-platform verification work, kept between quotes: the validated PCK path, the verified QE report, the
/// platform's SGX extension and the authenticated, parsed collateral, keyed by the exact certification data, QE
/// report, collateral signatures and CRLs (issuer chains and anchors compared on a hit), and reused only inside the
/// window where every certificate, CRL and collateral document it rests on is valid. A cached quote then costs only
/// its own signature check.
///
/// Collateral is keyed by its signatures, not its bytes: an entry holds what was parsed from bytes whose signature
/// verified, so other bytes presented with the same signature change nothing.
public final class VerificationCache: Sendable {
    struct Entry: Sendable {
        var path: [Certificate]
        var platform: SGXExtensions
        var tcbInfo: TCBInfo
        var qeIdentity: QEIdentity
        var validFrom: Date
        var validUntil: Date
        var issuerChains: [[Certificate]]
    }

    private let entries = Mutex<[[UInt8]: Entry]>([:])
    /// The most entries kept (one per platform and collateral version).
    public let capacity: Int

    /// Create an empty cache.
    ///
    /// - Parameter capacity: The most entries kept; when full, the cache is emptied before the next entry is stored.
    public init(capacity: Int = 1024) { self.capacity = capacity }

    /// The exact certification data, QE report and its binding, collateral signatures and CRLs.
    static func key(_ quote: DCAPQuote, _ collateral: Collateral) -> [UInt8] {
        var hash = SHA256()
        for part in [
            quote.certification.data, quote.qeReport.bytes, quote.qeReportSignature, quote.qeAuthenticationData,
            quote.attestationKey, collateral.tcbInfoSignature, collateral.qeIdentitySignature, collateral.rootCACRL,
            collateral.pckCRL,
        ] {
            hash.update(data: withUnsafeBytes(of: UInt64(part.count).littleEndian, Array.init))
            hash.update(data: part)
        }
        return Array(hash.finalize())
    }

    func entry(_ key: [UInt8], collateral: Collateral, roots: [Certificate], at time: Date) -> Entry? {
        guard let entry = entries.withLock({ $0[key] }), time >= entry.validFrom, time < entry.validUntil,
            entry.issuerChains == [
                collateral.tcbInfoIssuerChain, collateral.qeIdentityIssuerChain, collateral.pckCRLIssuerChain,
            ],
            let anchor = entry.path.last, roots.contains(anchor)
        else { return nil }
        return entry
    }

    func store(_ entry: Entry, for key: [UInt8]) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll() }
            entries[key] = entry
        }
    }

    /// Forget everything (after a policy or anchor change).
    public func removeAll() { entries.withLock { $0.removeAll() } }
}
