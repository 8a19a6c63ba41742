internal import Crypto
internal import Foundation
internal import Synchronization
internal import X509

/// Per-platform verification work, kept between quotes: the validated PCK path and the authenticated, parsed
/// collateral, keyed by the exact certification data, collateral and anchors, and reused only inside the window
/// where every certificate, CRL and collateral document it rests on is valid. A cached quote then costs only its
/// own two signature checks.
public final class VerificationCache: Sendable {
    struct Entry: Sendable {
        var path: [Certificate]
        var tcbInfo: TCBInfo
        var qeIdentity: QEIdentity
        var validFrom: Date
        var validUntil: Date
        var issuerChains: [[Certificate]]
    }

    private let entries = Mutex<[[UInt8]: Entry]>([:])
    /// The most entries kept (one per platform and collateral version).
    public let capacity: Int

    public init(capacity: Int = 1024) { self.capacity = capacity }

    /// The exact certification data and signed collateral bytes. Issuer chains and anchors are compared on a hit
    /// (certificate equality is cheaper than hashing their encodings each time).
    static func key(_ quote: DCAPQuote, _ collateral: Collateral) -> [UInt8] {
        var hash = SHA256()
        for part in [
            quote.certification.data, collateral.tcbInfoBytes, collateral.tcbInfoSignature,
            collateral.qeIdentityBytes, collateral.qeIdentitySignature, collateral.rootCACRL, collateral.pckCRL,
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

/// Counts signature verifications in the current task (for `enclave bench verify`).
public final class SignatureCounter: Sendable {
    @TaskLocal public static var current: SignatureCounter?
    private let count = Mutex(0)

    public init() {}

    /// Verifications counted so far.
    public var value: Int { count.withLock { $0 } }

    static func record(_ verifications: Int) {
        current?.count.withLock { $0 += verifications }
    }
}
