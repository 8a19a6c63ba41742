internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// Runs a request's task on the thread that read the request, while that thread drains it: a host caller reading
/// its own answer serves an OCALL that arrives meanwhile itself, without waking another thread (see
/// `ReadLeadership`).
///
/// Jobs enqueued from the draining thread while it drains (the request's first job, child tasks it starts, a
/// continuation it resumes itself) run on it, in order. Any other job (the task resumed later from another thread,
/// or after draining ended) goes to Swift's global concurrent executor, where the task then continues: nothing
/// waits for a thread that may be blocked reading.
final class InlineExecutor: TaskExecutor {
    private struct State {
        var drainer: pthread_t?
        var jobs: [UnownedJob] = []
        var head = 0
    }

    private let state = Mutex(State())

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let here = pthread_self()
        let kept = state.withLock { state -> Bool in
            guard let drainer = state.drainer, pthread_equal(drainer, here) != 0 else { return false }
            state.jobs.append(unowned)
            return true
        }
        if !kept { globalConcurrentExecutor.enqueue(ExecutorJob(unowned)) }
    }

    /// Make the calling thread the one that drains (until ``endDraining()``).
    func beginDraining() {
        let here = pthread_self()
        state.withLock { $0.drainer = here }
    }

    /// Run the jobs enqueued on this thread until none is left.
    func runQueued() {
        while true {
            let next = state.withLock { state -> UnownedJob? in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                return job
            }
            guard let next else { return }
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Stop draining; jobs left over (none after ``runQueued()``) go to the global executor.
    func endDraining() {
        let left = state.withLock { state -> ArraySlice<UnownedJob> in
            state.drainer = nil
            let left = state.jobs[state.head...]
            state.jobs.removeAll(keepingCapacity: true)
            state.head = 0
            return left
        }
        for job in left { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }
}
