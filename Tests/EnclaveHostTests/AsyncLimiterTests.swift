import Foundation
import Synchronization
import Testing
import _EnclaveChannel

/// The limiter: never more holders than the limit under contention, every permit back at the end, waiters served
/// first come first served and ahead of `tryAcquire`.
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

    /// Wait until `condition` holds, looking every 10 ms (a hang guard of 300 s: under the whole suite's load a task
    /// may take long to start).
    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(300)
        while !condition() {
            try #require(ContinuousClock.now < deadline, "the condition never held")
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func waitersGoFirstInTheOrderTheyCame() async throws {
        let limiter = AsyncLimiter(limit: 1)
        #expect(limiter.tryAcquire())
        let order = Order()
        let first = Task {
            await limiter.acquire()
            order.add("first")
        }
        try await Self.waitUntil { limiter.waiting == 1 }
        let second = Task {
            await limiter.acquire()
            order.add("second")
            limiter.release()
        }
        try await Self.waitUntil { limiter.waiting == 2 }
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
}
