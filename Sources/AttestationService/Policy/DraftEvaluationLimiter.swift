internal import Synchronization

/// How many draft policies (`draftPolicyForAttestation`, which anyone may send) are evaluated at once: at most
/// `limit`; one more is refused at once (`TooManyDraftPolicyEvaluations`), never queued, so that anonymous drafts
/// can occupy at most `limit` threads and the evaluations of stored policies always find a core.
final class DraftEvaluationLimiter: Sendable {
    /// The most drafts evaluated at once.
    let limit: Int
    private let running = Mutex(0)

    init(limit: Int) { self.limit = max(0, limit) }

    /// Take a slot; false when `limit` drafts are already being evaluated. Every `true` needs one `release()`.
    func acquire() -> Bool {
        running.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    /// Give back a slot taken with `acquire()`.
    func release() {
        running.withLock { count in count = max(0, count - 1) }
    }

    /// The drafts being evaluated now.
    var inUse: Int { running.withLock { $0 } }
}
