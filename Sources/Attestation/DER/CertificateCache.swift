internal import Synchronization
internal import X509

/// Certificates parsed in this process, each kept with the exact DER bytes it came from: the issuing certificates of
/// DCAP chains (Intel's PCK CAs, its TCB Signing certificate) are the same few for every platform, so a chain or a
/// collateral bundle met for the first time still finds them parsed. A lookup whose bytes differ in any way parses
/// them (parsing is a function of the bytes alone, so the result is the one a parse gives); nothing here is trusted:
/// every certificate is validated wherever it is used. Quotes' own PCK certificates (leaves) are not kept here.
final class CertificateCache: Sendable {
    /// The process's cache.
    static let shared = CertificateCache()

    private struct State: Sendable {
        var certificates: [DERKey: Certificate] = [:]
        var hits = 0
        var misses = 0
    }

    private let state = Mutex(State())
    /// The most certificates kept; when full, the cache is emptied before the next one is stored.
    let capacity: Int

    init(capacity: Int = 64) { self.capacity = max(1, capacity) }

    var hits: Int { state.withLock { $0.hits } }
    var misses: Int { state.withLock { $0.misses } }

    /// The certificate parsed from exactly `der`.
    func certificate(der: [UInt8]) throws -> Certificate {
        let kept = state.withLock { state -> Certificate? in
            guard let certificate = state.certificates[DERKey(der)] else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            return certificate
        }
        if let kept { return kept }
        let certificate = try Certificate(derEncoded: der)
        state.withLock { state in
            if state.certificates.count >= capacity { state.certificates.removeAll() }
            state.certificates[DERKey(der)] = certificate
        }
        return certificate
    }

    /// Whether a certificate parsed from exactly `der` is kept.
    func contains(der: [UInt8]) -> Bool { state.withLock { $0.certificates[DERKey(der)] != nil } }

    func removeAll() { state.withLock { $0.certificates.removeAll() } }

    /// DER bytes as a dictionary key, hashed in one call over the buffer (`[UInt8]`'s own hashing feeds the hasher
    /// one byte at a time: most of a lookup's cost for a certificate's 600 bytes); equal when the bytes are.
    struct DERKey: Hashable, Sendable {
        let bytes: [UInt8]

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }
}
