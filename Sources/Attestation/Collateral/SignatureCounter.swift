internal import Synchronization

/// Counts signature verifications in the current task (for `enclave bench verify`).
public final class SignatureCounter: Sendable {
    /// The counter of the current task, if any; bind one with `SignatureCounter.$current.withValue(counter) { … }` and
    /// every signature this library verifies inside the closure is counted.
    @TaskLocal public static var current: SignatureCounter?
    private let count = Mutex(0)

    /// A counter at zero.
    public init() {}

    /// Verifications counted so far.
    public var value: Int { count.withLock { $0 } }

    static func record(_ verifications: Int) {
        current?.count.withLock { $0 += verifications }
    }
}
