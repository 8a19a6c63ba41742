internal import Foundation
internal import Synchronization

/// Parsed release policies by their exact bytes, so that a release does not parse its key's policy again.
///
/// A policy is a pure function of its bytes: the cache answers for given bytes exactly what
/// ``ReleasePolicy/init(jsonBytes:)`` answers for them (a policy that does not parse is not kept, and is refused
/// again each time). Bounded: when ``capacity`` policies or ``byteCapacity`` bytes of them are held it starts over.
final class PolicyCache: Sendable {
    /// The most policies held.
    static let capacity = 1024
    /// The most bytes of policy text held (4 MiB; a policy has at most 64 KiB).
    static let byteCapacity = 4 << 20

    private struct Table {
        var policies: [[UInt8]: ReleasePolicy] = [:]
        var bytes = 0
    }

    private let parsed = Mutex(Table())

    /// The policy `bytes` parse to, `nil` when they don't.
    func policy(_ bytes: [UInt8]) -> ReleasePolicy? {
        if let policy = parsed.withLock({ $0.policies[bytes] }) { return policy }
        guard let policy = try? ReleasePolicy(jsonBytes: Data(bytes)) else { return nil }
        parsed.withLock { table in
            if table.policies.count >= Self.capacity || table.bytes + bytes.count > Self.byteCapacity {
                table = Table()
            }
            if table.policies.updateValue(policy, forKey: bytes) == nil { table.bytes += bytes.count }
        }
        return policy
    }

    /// How many policies are held (tests).
    var count: Int { parsed.withLock { $0.policies.count } }
}
