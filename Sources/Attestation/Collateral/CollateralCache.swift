internal import Crypto
internal import EnclaveCore
internal import Synchronization

/// Collateral bundles already parsed, kept with the exact bytes they came from, so that a verifier handed the same
/// bundle again (every quote of a platform comes with its FMSPC's bundle) does not read its JSON, hexadecimal and PEM
/// again. A lookup is by the SHA-256 of the bundle's bytes and is confirmed by comparing the bytes themselves: other
/// bytes, whatever they are, miss and are parsed. Parsing is a function of the bytes alone and trusts nothing: every
/// signature, chain, window and revocation is still checked on every verification. Bundles that do not parse are
/// not kept.
public final class CollateralCache: Sendable {
    /// The cache ``Collateral/init(dcapQVLJSON:cache:)`` uses unless told otherwise.
    public static let shared = CollateralCache()

    private struct Entry: Sendable {
        let bytes: [UInt8]
        let collateral: Collateral
    }

    private struct State: Sendable {
        var entries: [[UInt8]: Entry] = [:]
        /// Keys, oldest first: the oldest entry makes room for a new one.
        var order: [[UInt8]] = []
        var hits = 0
        var misses = 0
    }

    private let state = Mutex(State())
    /// The most bundles kept (one per platform family and collateral version).
    public let capacity: Int

    /// Create an empty cache.
    ///
    /// - Parameter capacity: The most bundles kept; when full, the oldest is dropped to make room.
    public init(capacity: Int = 64) { self.capacity = max(1, capacity) }

    /// Lookups answered from the cache.
    public var hits: Int { state.withLock { $0.hits } }
    /// Lookups that parsed (including bundles that then failed to parse).
    public var misses: Int { state.withLock { $0.misses } }
    /// Bundles kept.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Forget every bundle.
    public func removeAll() {
        state.withLock { state in
            state.entries.removeAll()
            state.order.removeAll()
        }
    }

    /// The collateral `bytes` hold: the one parsed before from exactly these bytes, else `parse(bytes)`, kept.
    func collateral(
        bundle bytes: [UInt8],
        parse: ([UInt8]) throws(EnclaveError) -> Collateral
    ) throws(EnclaveError) -> Collateral {
        let key = Array(SHA256.hash(data: bytes))
        let kept = state.withLock { state -> Collateral? in
            guard let entry = state.entries[key], entry.bytes == bytes else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            return entry.collateral
        }
        if let kept { return kept }
        let parsed = try parse(bytes)
        state.withLock { state in
            if state.entries[key] == nil {
                while state.entries.count >= capacity, !state.order.isEmpty {
                    state.entries[state.order.removeFirst()] = nil
                }
                state.order.append(key)
            }
            state.entries[key] = Entry(bytes: bytes, collateral: parsed)
        }
        return parsed
    }
}
