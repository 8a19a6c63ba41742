internal import Synchronization

/// A FIFO counting semaphore for async code: bounds how many handlers run at once.
///
/// A permit taken or given back while no caller waits costs one atomic operation and no lock (a switchless call
/// takes and returns one per call). One counter holds the free permits less the callers that wait; only a caller
/// that finds no permit, and a release that finds callers waiting, take the lock that keeps the waiters in order.
package final class AsyncLimiter: Sendable {
    /// Free permits less waiting callers: positive, permits are free; negative, that many callers wait (or are about
    /// to: counted before they are queued).
    private let count: Atomic<Int>
    private let queue = Mutex<Queue>(Queue())

    private struct Queue {
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0
        /// Permits handed over by releases that found a waiter counted but not yet queued: the next caller to queue
        /// takes one instead of waiting.
        var handedOver = 0

        var isEmpty: Bool { head == waiters.count }

        mutating func removeFirst() -> CheckedContinuation<Void, Never> {
            let first = waiters[head]
            head += 1
            if head == waiters.count {
                waiters.removeAll(keepingCapacity: true)
                head = 0
            }
            return first
        }
    }

    package init(limit: Int) { count = Atomic(max(1, limit)) }

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
        // Acquiring: what the permit's last holder did before its release happens before what this caller does.
        if count.subtract(1, ordering: .acquiringAndReleasing).oldValue > 0 { return }
        // Counted as waiting: a release now hands this caller a permit, directly or through `handedOver`.
        await withCheckedContinuation { continuation in
            let handed = queue.withLock { queue -> Bool in
                if queue.handedOver > 0 {
                    queue.handedOver -= 1
                    return true
                }
                queue.waiters.append(continuation)
                return false
            }
            if handed { continuation.resume() }
        }
    }

    /// How many callers wait for a permit now.
    package var waiting: Int { queue.withLock { $0.waiters.count - $0.head } }

    /// Take a free permit without waiting; `false` when none is free (or callers wait for one: they go first).
    package func tryAcquire() -> Bool {
        var current = count.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = count.compareExchange(
                expected: current,
                desired: current - 1,
                ordering: .acquiringAndReleasing
            )
            if exchanged { return true }
            current = original
        }
        return false
    }

    package func release() {
        // Releasing: what this holder did happens before what the permit's next holder does.
        guard count.add(1, ordering: .acquiringAndReleasing).oldValue < 0 else { return }
        // A caller waits (or is about to): the permit is its.
        let next = queue.withLock { queue -> CheckedContinuation<Void, Never>? in
            if queue.isEmpty {
                queue.handedOver += 1
                return nil
            }
            return queue.removeFirst()
        }
        next?.resume()
    }
}
