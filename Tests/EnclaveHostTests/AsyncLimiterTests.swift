import Foundation
import Synchronization
import Testing
import _EnclaveChannel

/// The limiter's permits taken without a lock: never more holders than the limit under contention, waiters served
/// first come first served, and a permit released while its waiter is still on its way to wait is not lost.
@Suite("AsyncLimiter")
struct AsyncLimiterTests {
    /// How many hold a permit now, and the most that ever did.
    final class Holders: Sendable {
        let state = Mutex<(now: Int, most: Int)>((0, 0))
        func enter() {
            state.withLock {
                $0.now += 1
                $0.most = max($0.most, $0.now)
            }
        }
        func leave() { state.withLock { $0.now -= 1 } }
        var most: Int { state.withLock { $0.most } }
    }

    /// A count shared by tasks.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        func add() { value.add(1, ordering: .relaxed) }
        var now: Int { value.load(ordering: .relaxed) }
    }

    /// Names appended in order by tasks.
    final class Order: Sendable {
        let names = Mutex<[String]>([])
        func add(_ name: String) { names.withLock { $0.append(name) } }
        var all: [String] { names.withLock { $0 } }
    }

    @Test func contendedPermitsNeverExceedTheLimitAndAllComeBack() async throws {
        let limiter = AsyncLimiter(limit: 3)
        let holders = Holders()
        let done = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<32 {
                group.addTask {
                    for round in 0..<300 {
                        if (task + round) % 3 == 0, limiter.tryAcquire() {
                            holders.enter()
                            holders.leave()
                            limiter.release()
                        } else {
                            try await limiter.run {
                                holders.enter()
                                if round % 50 == 0 { await Task.yield() }
                                holders.leave()
                            }
                        }
                        done.add()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(done.now == 32 * 300)
        #expect(holders.most <= 3)
        #expect(holders.most >= 1)
        // Every permit came back, and no more than the limit.
        #expect(limiter.tryAcquire())
        #expect(limiter.tryAcquire())
        #expect(limiter.tryAcquire())
        #expect(!limiter.tryAcquire())
    }

    @Test func waitersGoFirstInTheOrderTheyCame() async throws {
        let limiter = AsyncLimiter(limit: 1)
        #expect(limiter.tryAcquire())
        let order = Order()
        let first = Task {
            await limiter.acquire()
            order.add("first")
        }
        try await Task.sleep(for: .milliseconds(100))
        let second = Task {
            await limiter.acquire()
            order.add("second")
            limiter.release()
        }
        try await Task.sleep(for: .milliseconds(100))
        // Callers wait: a permit is not taken past them.
        #expect(!limiter.tryAcquire())
        limiter.release()
        await first.value
        #expect(order.all == ["first"])
        #expect(!limiter.tryAcquire())
        limiter.release()
        await second.value
        #expect(order.all == ["first", "second"])
        #expect(limiter.tryAcquire())
        #expect(!limiter.tryAcquire())
    }

    @Test func aPermitReleasedWhileItsWaiterIsOnItsWayIsNotLost() async throws {
        // One permit passed back and forth between two tasks running at once, as fast as they go: a release that
        // finds a waiter counted but not yet queued must still wake it (else a task waits for good; the test gives
        // up at a deadline instead of hanging).
        let limiter = AsyncLimiter(limit: 1)
        let rounds = Counter()
        let started = Counter()
        let perTask = 50_000
        let work = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        // Start together (bounded: a busy pool may run the tasks one after the other).
                        started.add()
                        let start = ContinuousClock.now
                        while started.now < 2, ContinuousClock.now - start < .seconds(1) {}
                        for _ in 0..<perTask {
                            await limiter.acquire()
                            rounds.add()
                            for _ in 0..<20 { withExtendedLifetime(rounds) {} }
                            limiter.release()
                        }
                    }
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while rounds.now < 2 * perTask, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        // A lost wake-up leaves a task waiting for good: fail here rather than wait for it.
        try #require(rounds.now == 2 * perTask)
        await work.value
        #expect(limiter.tryAcquire())
        #expect(!limiter.tryAcquire())
    }
}
