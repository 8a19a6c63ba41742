internal import CEnclaveSystem
internal import Dispatch
internal import EnclaveCore
internal import Foundation
internal import Synchronization
internal import _EnclaveChannel

#if canImport(Glibc)
internal import Glibc
#endif

/// One enclave thread serving one slot of the switchless call ring (``SwitchlessRing``), started when the host asks
/// for it with the reserved call ``SwitchlessRing/startCall``.
///
/// The thread spins on its slot's state word for the ring's worker spin, then sleeps on it (a futex the host wakes
/// when it posts a request to a sleeping worker): an idle enclave uses no CPU. It takes a snapshot of the slot's
/// words, checks it, copies the request in and parses only the copy, so a host that rewrites the slot meanwhile
/// changes nothing it has read; a request too large for the slot, an unparsable one or an unknown call is answered
/// with an error, and a state that is not a request is left alone. The call runs through the same handler as a
/// regular ECALL (the application's limit on concurrent calls included), as a task whose preferred executor is
/// this thread: the request is read, served and answered here, with no hand-off to another thread unless the
/// handler suspends. Jobs that reach this executor while it serves no call go to the worker pool.
final class SwitchlessWorker: TaskExecutor, @unchecked Sendable {  // unchecked: mutable state behind `jobs`
    private struct Jobs {
        var queue: [UnownedJob] = []
        var head = 0
        var serving = false
        var sleeping = false
        /// The served call's outcome, once its task has finished.
        var result: Result<[UInt8], any Error>?
    }

    private let ring: SwitchlessRing
    private let slot: Int
    private let handler: RPCPeer.Handler
    private let jobs = Mutex(Jobs())
    private let wake = DispatchSemaphore(value: 0)
    private let pool: WorkerPool

    private init(ring: SwitchlessRing, slot: Int, handler: @escaping RPCPeer.Handler, pool: WorkerPool) {
        self.ring = ring
        self.slot = slot
        self.handler = handler
        self.pool = pool
    }

    private static let started = Mutex(false)

    /// Map the ring on ``SwitchlessRing/descriptor`` and start one worker per slot. Once per process.
    static func start(handler: @escaping RPCPeer.Handler, pool: WorkerPool) throws(EnclaveError) {
        let first = started.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { throw .invalidConfiguration("switchless calls are already being served") }
        let ring = try SwitchlessRing.attach(fd: SwitchlessRing.descriptor)
        for slot in 0..<ring.slotCount {
            let worker = SwitchlessWorker(ring: ring, slot: slot, handler: handler, pool: pool)
            let thread = Thread { worker.run() }
            thread.stackSize = 2 << 20
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let action = jobs.withLock { jobs -> Int in
            guard jobs.serving else { return 0 }
            jobs.queue.append(job)
            guard jobs.sleeping else { return 1 }
            jobs.sleeping = false
            return 2
        }
        switch action {
        case 0: pool.enqueue(job)
        case 2: wake.signal()
        default: break
        }
    }

    private func run() {
        WorkerPool.nameThisThread("enclave-s\(slot)")
        let stateWord = ring.slotWord(slot, SwitchlessRing.stateOffset)
        let sleepingWord = ring.slotWord(slot, SwitchlessRing.workerSleepingOffset)
        let spin = UInt64(ring.workerSpinMicroseconds) * 1000
        let busySpin = ProcessInfo.processInfo.activeProcessorCount > 1
        var idleSince = Self.now()
        var spins = 0
        var yielding = false
        while !ring.isClosed {
            let observed = ek_atomic_load32(stateWord)
            if observed == SwitchlessRing.State.request.rawValue || observed == SwitchlessRing.State.ping.rawValue {
                serve()
                idleSince = Self.now()
                spins = 0
                continue
            }
            // Spin: busy while the host runs on another CPU, yielding while it shares this one.
            if spins & 63 == 0 {
                if spins > 0 && Self.now() &- idleSince >= spin {
                    sleep(stateWord: stateWord, sleepingWord: sleepingWord)
                    idleSince = Self.now()
                    spins = 0
                    continue
                }
                ring.publishCPU(SwitchlessRing.workerCPUOffset, slot: slot)
                yielding = !busySpin || ring.sharesCPU(with: SwitchlessRing.hostCPUOffset, slot: slot)
            }
            spins &+= 1
            if yielding {
                sched_yield()
            } else {
                ek_spin_pause()
            }
        }
    }

    /// Sleep until the host changes the state word (it wakes a sleeping worker after posting a request).
    private func sleep(stateWord: UnsafeMutablePointer<UInt32>, sleepingWord: UnsafeMutablePointer<UInt32>) {
        ek_atomic_store32(sleepingWord, 1)
        let current = ek_atomic_load32(stateWord)
        if current != SwitchlessRing.State.request.rawValue && current != SwitchlessRing.State.ping.rawValue
            && !ring.isClosed
        {
            _ = ek_futex_wait(stateWord, current, -1)
        }
        ek_atomic_store32(sleepingWord, 0)
    }

    /// Serve the request in the slot and write the answer.
    private func serve() {
        let snapshot = ring.snapshot(slot)
        let outcome: Result<[UInt8], any Error>
        switch SwitchlessRing.checkRequest(snapshot, capacity: ring.capacity) {
        case .failure(let error):
            outcome = .failure(error)
        case .success(let length):
            let payload = ring.copyOut(slot, count: length)
            outcome = snapshot.state == SwitchlessRing.State.ping.rawValue ? .success(payload) : execute(payload)
        }
        var answer: [UInt8]
        var state = SwitchlessRing.State.response
        switch outcome {
        case .success(let result):
            answer = result
        case .failure(let error):
            answer = RPCPeer.errorPayload(error)
            state = .error
        }
        if answer.count > ring.capacity {
            answer = RPCPeer.errorPayload(
                EnclaveError.limitExceeded(
                    "result of \(answer.count) bytes exceeds the \(ring.capacity)-byte switchless slot"
                )
            )
            state = .error
        }
        ring.copyIn(slot, answer)
        ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.lengthOffset), UInt32(answer.count))
        ek_atomic_store64(ring.sequenceWord(slot), snapshot.sequence)
        ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.stateOffset), state.rawValue)
        if ek_atomic_load32(ring.slotWord(slot, SwitchlessRing.hostWaitingOffset)) != 0 {
            _ = ek_atomic_add32(ring.doorbell, 1)
            _ = ek_futex_wake(ring.doorbell, Int32.max)
        }
    }

    /// Run the call in `payload` (a copy) on this thread, as a task preferring this executor.
    private func execute(_ payload: [UInt8]) -> Result<[UInt8], any Error> {
        let request: (name: String, argument: ArraySlice<UInt8>)
        do throws(EnclaveError) {
            request = try FramePayload.parseRequest(payload)
        } catch {
            return .failure(error)
        }
        guard !request.name.hasPrefix(LaunchProtocol.reservedPrefix) else {
            return .failure(EnclaveError.unknownCall("\(request.name) is not served switchless"))
        }
        jobs.withLock {
            $0.serving = true
            $0.result = nil
        }
        let handler = self.handler
        // Started on this thread (no enqueue, no hand-off) and run here until it first suspends.
        Task.immediateDetached(executorPreference: self) {
            let outcome: Result<[UInt8], any Error>
            do {
                outcome = .success(try await handler(request.name, request.argument))
            } catch let error as EnclaveError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(EnclaveError.callFailed("\(request.name): \(error)"))
            }
            self.finish(outcome)
        }
        // Drain this executor's jobs until the task has finished and nothing is left.
        while true {
            let next = jobs.withLock { jobs -> UnownedJob? in
                if jobs.head < jobs.queue.count {
                    let job = jobs.queue[jobs.head]
                    jobs.head += 1
                    return job
                }
                jobs.queue.removeAll(keepingCapacity: true)
                jobs.head = 0
                if jobs.result != nil {
                    jobs.serving = false
                    return nil
                }
                jobs.sleeping = true
                return nil
            }
            if let next {
                next.runSynchronously(on: asUnownedTaskExecutor())
                continue
            }
            let finished = jobs.withLock { jobs -> Result<[UInt8], any Error>? in
                guard !jobs.serving else { return nil }
                defer { jobs.result = nil }
                return jobs.result
            }
            if let finished { return finished }
            wake.wait()
        }
    }

    private func finish(_ outcome: Result<[UInt8], any Error>) {
        let signal = jobs.withLock { jobs -> Bool in
            jobs.result = outcome
            guard jobs.sleeping else { return false }
            jobs.sleeping = false
            return true
        }
        if signal { wake.signal() }
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
