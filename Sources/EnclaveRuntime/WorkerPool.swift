internal import Dispatch
internal import EnclaveCore
internal import Foundation
internal import Synchronization
internal import _EnclaveChannel

#if canImport(Glibc)
internal import Glibc
#endif

/// The enclave's own threads, in the leader/follower pattern: one worker at a time reads the channel; when it has
/// a frame it hands the reader to an idle worker and then serves the frame itself. ECALL handlers run as tasks
/// that prefer this pool as their executor, so a request is read, served and answered on one thread, with no
/// hand-off on the critical path. Tasks resumed from elsewhere (timers, OCALL answers) go to the shared queue and
/// wake an idle worker.
final class WorkerPool: TaskExecutor, @unchecked Sendable {  // unchecked: all mutable state is behind `state`
    private struct State {
        var jobs: [UnownedJob] = []
        var jobHead = 0
        var idle: [Int] = []
        var readerFree = true
        var closed = false
    }

    private let state = Mutex(State())
    private let wakers: [DispatchSemaphore]
    private let reader: FrameReader
    private let onFrame: @Sendable (Frame, WorkerPool) -> Void
    private let onClose: @Sendable (EnclaveError) -> Void
    private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Start `count` workers reading frames from `reader`.
    init(
        count: Int,
        reader: FrameReader,
        onFrame: @escaping @Sendable (Frame, WorkerPool) -> Void,
        onClose: @escaping @Sendable (EnclaveError) -> Void
    ) {
        self.wakers = (0..<max(2, count)).map { _ in DispatchSemaphore(value: 0) }
        self.reader = reader
        self.onFrame = onFrame
        self.onClose = onClose
        for index in wakers.indices {
            let thread = Thread { [self] in self.work(index) }
            thread.name = "enclave-worker-\(index)"
            thread.stackSize = 2 << 20
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let onWorker = pthread_getspecific(Self.workerKey) != nil
        let wake = state.withLock { state -> Int? in
            state.jobs.append(unowned)
            // A worker that enqueues drains the queue itself next; wake another only if work is piling up.
            if onWorker && state.jobs.count - state.jobHead == 1 { return nil }
            return state.idle.popLast()
        }
        if let wake { wakers[wake].signal() }
    }

    private enum Step {
        case run(UnownedJob)
        case lead
        case sleep
        case exit
    }

    private func work(_ index: Int) {
        pthread_setspecific(Self.workerKey, UnsafeRawPointer(bitPattern: index + 1))
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
                if state.readerFree {
                    state.readerFree = false
                    return .lead
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
            case .lead:
                let next = reader.next()
                // Answers and pings are served at once by the leader, which keeps reading; a request hands the
                // reader to an idle worker first, because its handler may run for a while.
                if case .success(let frame) = next, frame.kind != .request {
                    onFrame(frame, self)
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
                    onFrame(frame, self)
                case .failure(let reason):
                    for waker in wakers { waker.signal() }
                    onClose(reason)
                    return
                }
            }
        }
    }
}
