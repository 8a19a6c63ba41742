internal import EnclaveCore
internal import Synchronization

/// The parsed forms of a ``Collateral``'s bytes — its two CRLs, TCB info and QE identity — made on first use and
/// kept with the exact bytes each came from, so that one collateral object verifying many quotes parses each piece
/// once. A lookup whose bytes differ in any way from the kept ones parses them anew: the key is the bytes, never the
/// object's identity, and parsing trusts nothing (every signature is still checked on every verification).
final class ParsedCollateral: Sendable {
    private struct Kept<Value: Sendable>: Sendable {
        let bytes: [UInt8]
        let value: Value
    }

    private let crls = Mutex<[Kept<CertificateRevocationList>]>([])
    private let tcbInfos = Mutex<Kept<TCBInfo>?>(nil)
    private let qeIdentities = Mutex<Kept<QEIdentity>?>(nil)

    init() {}

    /// The CRL `bytes` hold (``CertificateRevocationList/init(bytes:)``).
    func crl(_ bytes: [UInt8]) throws(EnclaveError) -> CertificateRevocationList {
        if let kept = crls.withLock({ $0.first { $0.bytes == bytes } }) { return kept.value }
        let parsed = try CertificateRevocationList(bytes: bytes)
        crls.withLock { kept in
            // A collateral object holds two CRLs; more means its bytes were replaced: keep the latest two.
            if kept.count >= 2 { kept.removeFirst(kept.count - 1) }
            kept.append(Kept(bytes: bytes, value: parsed))
        }
        return parsed
    }

    /// The TCB info `bytes` hold (``TCBInfo/init(jsonBytes:)``).
    func tcbInfo(_ bytes: [UInt8]) throws(EnclaveError) -> TCBInfo {
        if let kept = tcbInfos.withLock({ $0 }), kept.bytes == bytes { return kept.value }
        let parsed = try TCBInfo(jsonBytes: bytes)
        tcbInfos.withLock { $0 = Kept(bytes: bytes, value: parsed) }
        return parsed
    }

    /// The QE identity `bytes` hold (``QEIdentity/init(jsonBytes:)``).
    func qeIdentity(_ bytes: [UInt8]) throws(EnclaveError) -> QEIdentity {
        if let kept = qeIdentities.withLock({ $0 }), kept.bytes == bytes { return kept.value }
        let parsed = try QEIdentity(jsonBytes: bytes)
        qeIdentities.withLock { $0 = Kept(bytes: bytes, value: parsed) }
        return parsed
    }
}
