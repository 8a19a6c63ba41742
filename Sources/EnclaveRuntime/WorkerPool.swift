internal import CEnclaveSystem
internal import Dispatch
internal import EnclaveCore
internal import Foundation
internal import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency
internal import _EnclaveChannel

#if canImport(Glibc)
internal import Glibc
#endif

/// The enclave's own threads, in the leader/follower pattern: one worker at a time reads the channel; when it has
/// a frame it hands the reader to an idle worker and then serves the frame itself. ECALL handlers run as tasks
/// that prefer this pool as their executor, so a request is read, served and answered on one thread, with no
/// hand-off on the critical path. Tasks resumed from elsewhere (timers, OCALL answers) go to the shared queue and
/// wake an idle worker.
///
/// The pool is also the process's global executor (see ``EnclaveExecutors``): every `Task {}`, `Task.detached`,
/// `async let`, task-group child and actor job runs here, and `Task.sleep` wakes up through the pool's timer
/// thread. Workers start before the channel is attached (``serve(reader:onFrame:onClose:)``) and run jobs
/// meanwhile.
final class WorkerPool: TaskExecutor, SchedulingExecutor, @unchecked Sendable {  // unchecked: state behind `state`
    private struct Serving {
        let reader: FrameReader
        let onFrame: @Sendable (Frame, WorkerPool) -> Void
        let onClose: @Sendable (EnclaveError) -> Void
    }

    private struct State {
        var jobs: [UnownedJob] = []
        var jobHead = 0
        var idle: [Int] = []
        var serving: Serving?
        /// Whether no worker leads: set once ``serve(reader:onFrame:onClose:)`` attached the reader.
        var readerFree = false
        var closed = false
    }

    private let state = Mutex(State())
    private let wakers: [DispatchSemaphore]
    private var timer: JobTimer!  // set once in init, before any job can arrive
    private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Start `count` workers (at least 2) and the timer thread.
    init(count: Int) {
        self.wakers = (0..<max(2, count)).map { _ in DispatchSemaphore(value: 0) }
        self.timer = JobTimer { [unowned self] job in self.enqueue(job, fromWorker: false) }
        for index in wakers.indices {
            let thread = Thread { [self] in self.work(index) }
            thread.stackSize = 2 << 20
            thread.start()
        }
    }

    /// Start reading frames from `reader`: one idle worker at a time leads. Call once.
    func serve(
        reader: FrameReader,
        onFrame: @escaping @Sendable (Frame, WorkerPool) -> Void,
        onClose: @escaping @Sendable (EnclaveError) -> Void
    ) {
        let wake = state.withLock { state -> Int? in
            precondition(state.serving == nil, "WorkerPool.serve called twice")
            state.serving = Serving(reader: reader, onFrame: onFrame, onClose: onClose)
            state.readerFree = true
            return state.idle.popLast()
        }
        if let wake { wakers[wake].signal() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        enqueue(UnownedJob(job), fromWorker: pthread_getspecific(Self.workerKey) != nil)
    }

    /// Run `job` on the pool (jobs a switchless worker receives while it serves no call).
    func enqueue(_ job: UnownedJob) {
        enqueue(job, fromWorker: pthread_getspecific(Self.workerKey) != nil)
    }

    /// `Task.sleep` and other delayed jobs: the timer thread enqueues `job` once `delay` has passed.
    ///
    /// The runtime asks with the continuous or the suspending clock, whose durations are `Duration`s; both are
    /// measured here on the monotonic clock (they differ only across a system suspend, when the wait simply
    /// ends later). A clock whose duration is not a `Duration` is one the runtime never passes: its job runs now.
    func enqueue<C: Clock>(
        _ job: consuming ExecutorJob,
        after delay: C.Duration,
        tolerance: C.Duration?,
        clock: C
    ) {
        let unowned = UnownedJob(job)
        guard let duration = delay as? Duration else {
            enqueue(unowned, fromWorker: false)
            return
        }
        timer.schedule(unowned, afterNanoseconds: Self.nanoseconds(duration))
    }

    /// `duration` in whole nanoseconds, 0 if negative, saturating (a wait of centuries is a wait forever).
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        guard seconds < 1 << 33 else { return .max }
        return UInt64(seconds) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    private func enqueue(_ job: UnownedJob, fromWorker onWorker: Bool) {
        let wake = state.withLock { state -> Int? in
            state.jobs.append(job)
            // A worker that enqueues drains the queue itself next; wake another only if work is piling up.
            if onWorker && state.jobs.count - state.jobHead == 1 { return nil }
            return state.idle.popLast()
        }
        if let wake { wakers[wake].signal() }
    }

    /// Set the calling thread's kernel name (at most 15 bytes) with `prctl(PR_SET_NAME)`, which the sandbox allows.
    static func nameThisThread(_ name: String) {
        let prSetName = 15  // PR_SET_NAME
        name.withCString { _ = ek_syscall3(ek_sys(EK_SYS_PRCTL), prSetName, Int(bitPattern: $0), 0) }
    }

    private enum Step {
        case run(UnownedJob)
        case lead(Serving)
        case sleep
        case exit
    }

    private func work(_ index: Int) {
        pthread_setspecific(Self.workerKey, UnsafeRawPointer(bitPattern: index + 1))
        // The kernel's thread name (15 bytes at most), set by the thread itself: prctl(PR_SET_NAME) is allowed,
        // writing another thread's /proc/…/comm is not.
        Self.nameThisThread("enclave-w\(index)")
        while true {
            let step = state.withLock { state -> Step in
                if state.jobHead < state.jobs.count {
                    let job = state.jobs[state.jobHead]
                    state.jobHead += 1
                    if state.jobHead > 1024 && state.jobHead * 2 > state.jobs.count {
                        state.jobs.removeFirst(state.jobHead)
                        state.jobHead = 0
                    }
                    return .run(job)
                }
                if state.closed { return .exit }
                if state.readerFree, let serving = state.serving {
                    state.readerFree = false
                    return .lead(serving)
                }
                state.idle.append(index)
                return .sleep
            }
            switch step {
            case .run(let job):
                job.runSynchronously(on: asUnownedTaskExecutor())
            case .sleep:
                wakers[index].wait()
            case .exit:
                return
            case .lead(let serving):
                let next = serving.reader.next()
                // Answers and pings are served at once by the leader, which keeps reading; a request hands the
                // reader to an idle worker first, because its handler may run for a while.
                if case .success(let frame) = next, frame.kind != .request {
                    serving.onFrame(frame, self)
                    state.withLock { $0.readerFree = true }
                    continue
                }
                let successor = state.withLock { state -> Int? in
                    state.readerFree = true
                    if case .failure = next { state.closed = true }
                    return state.idle.popLast()
                }
                if let successor { wakers[successor].signal() }
                switch next {
                case .success(let frame):
                    serving.onFrame(frame, self)
                case .failure(let reason):
                    for waker in wakers { waker.signal() }
                    serving.onClose(reason)
                    return
                }
            }
        }
    }
}
