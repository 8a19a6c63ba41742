internal import Dispatch
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// Delayed jobs (`Task.sleep`, timeouts) for the enclave's global executor: one thread, `enclave-timer`, sleeps
/// until the earliest deadline and hands each job that is due to `fire` (the worker pool's queue).
///
/// Deadlines are on the monotonic clock (`CLOCK_MONOTONIC`, read through the vDSO: no system call the sandbox
/// refuses). Jobs due at the same instant fire in the order they were scheduled.
final class JobTimer: @unchecked Sendable {  // unchecked: the heap is behind `state`, `fire` is Sendable
    private struct Entry {
        var deadline: UInt64
        var sequence: UInt64
        var job: UnownedJob

        func precedes(_ other: Entry) -> Bool { (deadline, sequence) < (other.deadline, other.sequence) }
    }

    private struct State {
        var heap: [Entry] = []
        var sequence: UInt64 = 0
        /// The deadline the timer thread sleeps until (`.max`: until signalled).
        var sleepingUntil: UInt64 = .max
    }

    private let state = Mutex(State())
    private let waker = DispatchSemaphore(value: 0)
    private let fire: @Sendable (UnownedJob) -> Void

    /// Start the timer thread; `fire` receives each job when it is due, on that thread.
    init(fire: @escaping @Sendable (UnownedJob) -> Void) {
        self.fire = fire
        let thread = Thread { [self] in
            WorkerPool.nameThisThread("enclave-timer")
            self.loop()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The monotonic clock in nanoseconds.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Fire `job` once `nanoseconds` have passed (at once if 0).
    func schedule(_ job: UnownedJob, afterNanoseconds nanoseconds: UInt64) {
        let (sum, overflow) = Self.now().addingReportingOverflow(nanoseconds)
        let deadline = overflow ? UInt64.max : sum
        let wake = state.withLock { state -> Bool in
            state.sequence += 1
            push(Entry(deadline: deadline, sequence: state.sequence, job: job), into: &state.heap)
            guard deadline < state.sleepingUntil else { return false }
            // The thread sleeps past this deadline: wake it to sleep less (once per earlier deadline).
            state.sleepingUntil = deadline
            return true
        }
        if wake { waker.signal() }
    }

    private func loop() {
        var due: [UnownedJob] = []
        while true {
            let now = Self.now()
            let next = state.withLock { state -> UInt64 in
                while let first = state.heap.first, first.deadline <= now {
                    due.append(popFirst(from: &state.heap).job)
                }
                state.sleepingUntil = state.heap.first?.deadline ?? .max
                return state.sleepingUntil
            }
            for job in due { fire(job) }
            due.removeAll(keepingCapacity: true)
            if next == .max {
                waker.wait()
            } else if next > now {
                let wait = next - now
                _ = waker.wait(timeout: .now() + .nanoseconds(Int(clamping: wait)))
            }
        }
    }

    private func push(_ entry: Entry, into heap: inout [Entry]) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func popFirst(from heap: inout [Entry]) -> Entry {
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
