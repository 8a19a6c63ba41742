internal import Synchronization

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
