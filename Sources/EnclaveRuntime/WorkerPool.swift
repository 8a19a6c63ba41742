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

/// The enclave's own threads, in the leader/follower pattern: one worker at a time holds the channel's reader. The
/// holder serves what it reads itself, on its own thread, as a raw server would: an ECALL handler runs as a task
/// that prefers this pool as its executor, and the holder runs that task's job before it reads again; an OCALL's
/// answer resumes its task on the holder too. So a request is read, served and answered on one thread with no
/// wake-up of another thread: the same kernel work per call as a blocking `read`/`write` loop.
///
/// The reader changes hands only when it must: when the holder reads a request while more frames are already
/// buffered (another worker takes the reader at once, so concurrent calls run in parallel), and when the holder
/// has been busy with jobs for longer than ``standbyGraceNanoseconds``: one idle worker, the standby, looks every
/// grace period while calls come and takes the reader from a holder that stayed busy since it last looked, so a long
/// handler delays the calls behind it by at most about two grace periods. Once nothing has happened for
/// ``standbyQuietPeriods`` periods the standby sleeps until the next call starts (an idle enclave uses no CPU).
/// Tasks resumed from elsewhere (timers) go to the shared queue and wake an idle worker.
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
        /// Whether no worker holds the reader: set once ``serve(reader:onFrame:onClose:)`` attached it.
        var readerFree = false
        /// The worker that holds the reader (reading, or running jobs before it reads again).
        var holder: Int?
        /// Whether the holder runs jobs rather than reading, and how many such busy spells there have been.
        var holderBusy = false
        var busySpells: UInt64 = 0
        /// The idle worker that watches for a holder busy too long (it sleeps with a timeout while `standbyArmed`).
        var standby: Int?
        var standbyArmed = false
        var closed = false
    }

    /// How long the holder may run jobs before the standby takes the reader from it.
    static let standbyGraceNanoseconds: UInt64 = 1_000_000
    /// How many grace periods without a busy spell before the standby stops looking and sleeps until woken.
    static let standbyQuietPeriods = 16

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
            return Self.takeIdle(&state)
        }
        if let wake { wakers[wake].signal() }
    }

    /// An idle worker to wake: a sleeping one, else the standby (which then re-examines the state).
    private static func takeIdle(_ state: inout State) -> Int? {
        if let index = state.idle.popLast() { return index }
        guard let standby = state.standby else { return nil }
        state.standby = nil
        state.standbyArmed = false
        return standby
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
        /// Sleep at most one grace period as the standby, having seen this many busy spells.
        case watch(UInt64)
        case exit
    }

    private func work(_ index: Int) {
        pthread_setspecific(Self.workerKey, UnsafeRawPointer(bitPattern: index + 1))
        // The kernel's thread name (15 bytes at most), set by the thread itself: prctl(PR_SET_NAME) is allowed,
        // writing another thread's /proc/…/comm is not.
        Self.nameThisThread("enclave-w\(index)")
        // Standby bookkeeping: the busy spells seen before a timed look, looks in a row that saw nothing happen.
        var watched: UInt64?
        var quietLooks = 0
        var wakeStandby: Int?
        while true {
            let step = state.withLock { state -> Step in
                let spells = watched
                watched = nil
                if state.standby == index {
                    // Awake as the standby (its grace period ran out, or a busy spell armed it).
                    state.standby = nil
                    state.standbyArmed = false
                    if let spells {
                        // Take the reader from a holder that has been busy since the last look.
                        if state.holderBusy && state.busySpells == spells && state.holder != nil && !state.closed,
                            let serving = state.serving
                        {
                            state.holder = index
                            state.holderBusy = false
                            quietLooks = 0
                            return .lead(serving)
                        }
                        quietLooks = state.busySpells == spells && !state.holderBusy ? quietLooks + 1 : 0
                    } else {
                        quietLooks = 0
                    }
                }
                if state.jobHead < state.jobs.count {
                    let job = state.jobs[state.jobHead]
                    state.jobHead += 1
                    if state.jobHead > 1024 && state.jobHead * 2 > state.jobs.count {
                        state.jobs.removeFirst(state.jobHead)
                        state.jobHead = 0
                    }
                    if state.holder == index && !state.holderBusy {
                        // The holder starts a busy spell: make sure the standby looks.
                        state.holderBusy = true
                        state.busySpells &+= 1
                        if let standby = state.standby, !state.standbyArmed {
                            state.standbyArmed = true
                            wakeStandby = standby
                        } else if state.standby == nil, let idle = state.idle.popLast() {
                            state.standby = idle
                            state.standbyArmed = true
                            wakeStandby = idle
                        }
                    }
                    return .run(job)
                }
                if state.holder == index, let serving = state.serving, !state.closed {
                    state.holderBusy = false
                    return .lead(serving)
                }
                if state.closed { return .exit }
                if state.readerFree, let serving = state.serving {
                    state.readerFree = false
                    state.holder = index
                    state.holderBusy = false
                    return .lead(serving)
                }
                if state.standby == nil && state.holder != nil {
                    if quietLooks < Self.standbyQuietPeriods {
                        state.standby = index
                        state.standbyArmed = true
                        return .watch(state.busySpells)
                    }
                    // Nothing happened for a while: sleep until the next busy spell arms the standby again.
                    quietLooks = 0
                    state.standby = index
                    state.standbyArmed = false
                    return .sleep
                }
                state.idle.append(index)
                return .sleep
            }
            if let standby = wakeStandby {
                wakeStandby = nil
                wakers[standby].signal()
            }
            switch step {
            case .run(let job):
                job.runSynchronously(on: asUnownedTaskExecutor())
            case .sleep:
                wakers[index].wait()
            case .watch(let spells):
                _ = wakers[index].wait(timeout: .now() + .nanoseconds(Int(Self.standbyGraceNanoseconds)))
                watched = spells
            case .exit:
                return
            case .lead(let serving):
                let next = serving.reader.next()
                switch next {
                case .success(let frame):
                    // Served here, by the holder, unless more frames are already buffered behind a request: then
                    // another worker takes the reader at once, so that the calls run in parallel.
                    if frame.kind == .request && serving.reader.hasBufferedBytes {
                        let successor = state.withLock { state -> Int? in
                            state.holder = nil
                            state.holderBusy = false
                            state.readerFree = true
                            return Self.takeIdle(&state)
                        }
                        if let successor { wakers[successor].signal() }
                    }
                    serving.onFrame(frame, self)
                case .failure(let reason):
                    state.withLock { state in
                        state.holder = nil
                        state.closed = true
                    }
                    for waker in wakers { waker.signal() }
                    serving.onClose(reason)
                    return
                }
            }
        }
    }
}
