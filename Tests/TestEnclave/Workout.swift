// Every Swift concurrency construct an application may use, for the host's concurrency tests.
import CEnclaveSystem

/// Runs ``ConcurrencyWorkout`` iterations inside the enclave.
enum Workout {
    /// An actor whose jobs run on the global executor.
    actor Mixer {
        private(set) var calls = 0
        func mix(_ value: Int) -> Int {
            calls += 1
            return value &* 5
        }
    }

    /// Run `iterations` iterations, up to `width` at a time; the sum of each iteration's result.
    static func run(iterations: Int, width: Int = 8) async throws -> Int {
        let mixer = Mixer()
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            var sum = 0
            var next = 0
            while next < min(width, iterations) {
                let i = next
                group.addTask { try await iteration(i, mixer: mixer) }
                next += 1
            }
            while let value = try await group.next() {
                sum &+= value
                if next < iterations {
                    let i = next
                    group.addTask { try await iteration(i, mixer: mixer) }
                    next += 1
                }
            }
            return sum
        }
        let calls = await mixer.calls
        guard calls == iterations else { throw TestFailure(description: "actor ran \(calls) of \(iterations)") }
        return total
    }

    static func iteration(_ i: Int, mixer: Mixer) async throws -> Int {
        // Unstructured tasks, and sleeps in and out of them.
        let inherited = await Task { i &* 3 }.value
        let detached = await Task.detached { i &+ 7 }.value
        try await Task.sleep(for: .microseconds(20))
        let slept = try await Task.detached {
            try await Task.sleep(nanoseconds: 10_000)
            return 1
        }.value

        async let doubled = Task.detached { i &* 2 }.value
        async let squared = { (i % 1000) * (i % 1000) }()
        let asyncLet = await doubled + squared

        let group = await withTaskGroup(of: Int.self) { group in
            for offset in 0..<4 { group.addTask { i + offset } }
            return await group.reduce(0, +)
        }

        let continuation = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
            Task.detached { continuation.resume(returning: i ^ 0x55) }
        }

        let actor = await mixer.mix(i)

        let (stream, feed) = AsyncStream.makeStream(of: Int.self)
        Task.detached {
            for offset in 0..<3 { feed.yield(i + offset) }
            feed.finish()
        }
        var streamed = 0
        for await value in stream { streamed += value }

        let main = await MainActor.run { i & 0xff }

        return inherited + detached + slept + asyncLet + group + continuation + actor + streamed + main
    }
}

extension Workout {
    /// The kernel thread ID `@MainActor` code runs on.
    @MainActor static func mainActorThread() -> Int32 {
        Int32(truncatingIfNeeded: ek_syscall3(ek_sys(EK_SYS_GETTID), 0, 0, 0))
    }

    /// Sleep `microseconds` (0...10 s) among 100 other sleepers of 0–2× that; the microseconds it took.
    static func sleepProbe(microseconds: Int) async throws -> Int {
        let asked = min(max(microseconds, 0), 10_000_000)
        let clock = ContinuousClock()
        return try await withThrowingTaskGroup(of: Int?.self) { group in
            for index in 0..<100 {
                group.addTask {
                    try await Task.sleep(for: .microseconds(asked * (index % 21) / 10))
                    return nil
                }
            }
            group.addTask {
                let start = clock.now
                try await Task.sleep(for: .microseconds(asked))
                let elapsed = (clock.now - start).components
                return Int(elapsed.seconds) * 1_000_000 + Int(elapsed.attoseconds / 1_000_000_000_000)
            }
            var measured = 0
            for try await value in group { if let value { measured = value } }
            return measured
        }
    }
}
