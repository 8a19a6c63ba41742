internal import Synchronization

/// A FIFO counting semaphore for async code: bounds how many handlers run at once.
///
/// A free permit is taken and given back with one atomic operation each (no lock: the switchless server takes one
/// per inline call). The count goes below zero by the number of callers waiting or about to wait; only they and a
/// release that has one to wake take the lock.
package final class AsyncLimiter: Sendable {
    /// Permits free (positive), or minus the number of callers waiting or about to wait (negative).
    private let count: Atomic<Int>
    /// Callers waiting, first come first served, and wake-ups handed out before their caller got to wait.
    private let queue: Mutex<(waiters: [CheckedContinuation<Void, Never>], wakeups: Int)>

    package init(limit: Int) {
        count = Atomic(max(1, limit))
        queue = Mutex(([], 0))
    }

    /// Run `body` once a permit is free.
    package func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        do {
            let value = try await body()
            release()
            return value
        } catch {
            release()
            throw error
        }
    }

    package func acquire() async {
        // A free permit is taken without a continuation (the common case: no lock, no allocation, no suspension).
        if count.subtract(1, ordering: .acquiring).oldValue > 0 { return }
        await withCheckedContinuation { continuation in
            let woken = queue.withLock { queue -> Bool in
                if queue.wakeups > 0 {
                    queue.wakeups -= 1
                    return true
                }
                queue.waiters.append(continuation)
                return false
            }
            if woken { continuation.resume() }
        }
    }

    /// Take a free permit without waiting; `false` when none is free (or callers wait for one: they go first).
    package func tryAcquire() -> Bool {
        var current = count.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = count.compareExchange(
                expected: current,
                desired: current - 1,
                successOrdering: .acquiring,
                failureOrdering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
        return false
    }

    package func release() {
        // Below zero before the release: a caller waits (or is about to), and this permit goes to it.
        if count.add(1, ordering: .releasing).oldValue >= 0 { return }
        let next = queue.withLock { queue -> CheckedContinuation<Void, Never>? in
            if queue.waiters.isEmpty {
                queue.wakeups += 1
                return nil
            }
            return queue.waiters.removeFirst()
        }
        next?.resume()
    }
}
