internal import Synchronization

/// A FIFO counting semaphore for async code: bounds how many handlers run at once.
package final class AsyncLimiter: Sendable {
    private let state: Mutex<(available: Int, waiters: [CheckedContinuation<Void, Never>])>

    package init(limit: Int) { state = Mutex((max(1, limit), [])) }

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
        // A free permit is taken without a continuation (the common case: no allocation, no suspension point).
        let taken = state.withLock { state -> Bool in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            return true
        }
        if taken { return }
        await withCheckedContinuation { continuation in
            if tryAcquire(continuation) { continuation.resume() }
        }
    }

    private func tryAcquire(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        state.withLock { state in
            if state.available > 0 {
                state.available -= 1
                return true
            }
            state.waiters.append(continuation)
            return false
        }
    }

    /// How many callers wait for a permit now.
    package var waiting: Int { state.withLock { $0.waiters.count } }

    /// Take a free permit without waiting; `false` when none is free (or callers wait for one: they go first).
    package func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            return true
        }
    }

    package func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
