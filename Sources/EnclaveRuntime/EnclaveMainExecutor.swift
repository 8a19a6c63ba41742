internal import Dispatch
internal import Synchronization
@_spi(ExperimentalCustomExecutors) import _Concurrency

#if canImport(Glibc)
internal import Glibc
#endif

/// The main actor's executor inside an enclave: a serial queue the enclave's main thread drains for the life of the
/// process (``run()``), so `@MainActor` code never reaches Dispatch's main queue, whose `dispatch_main` would hand
/// the queue to Dispatch's worker pool.
final class EnclaveMainExecutor: MainExecutor, @unchecked Sendable {  // unchecked: the queue is behind `state`
    private struct State {
        var jobs: [UnownedJob] = []
        var head = 0
        var stopped = false
        var thread: pthread_t?
    }

    private let state = Mutex(State())
    private let waker = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        state.withLock { $0.jobs.append(unowned) }
        waker.signal()
    }

    /// Run main-actor jobs on the calling thread, one at a time, until ``stop()``.
    func run() throws {
        state.withLock { $0.thread = pthread_self() }
        while let job = next() {
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        waker.signal()
    }

    var isMainExecutor: Bool { true }

    func checkIsolated() {
        precondition(isIsolatingCurrentContext() == true, "not on the enclave's main thread")
    }

    func isIsolatingCurrentContext() -> Bool? {
        guard let thread = state.withLock({ $0.thread }) else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    private func next() -> UnownedJob? {
        while true {
            let job = state.withLock { state -> UnownedJob?? in
                if state.stopped { return .some(nil) }
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head == state.jobs.count {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return .some(job)
            }
            if let job { return job }
            waker.wait()
        }
    }
}
