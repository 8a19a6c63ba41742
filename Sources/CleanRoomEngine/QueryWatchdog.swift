internal import Dispatch
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// The clean room's query time limits: one thread, `cleanroom-watch`, sleeps until the earliest armed deadline and
/// runs the action of each one that is due (``CleanRoomDatabase`` calls `sqlite3_interrupt`).
///
/// Not Dispatch: this code runs inside the clean room enclave, where a Dispatch timer (`asyncAfter`) starts
/// Dispatch's manager and worker threads, whose monitor opens `/proc/TID/stat` while the pool has work; the sandbox
/// refuses the open and libdispatch then traps (SIGILL). The thread is started at the first ``arm(after:_:)`` and
/// waits on a semaphore (a futex, which the sandbox allows) with a timeout; deadlines are on the monotonic clock
/// (`CLOCK_MONOTONIC`, read through the vDSO). A deadline is disarmed when its query ends
/// (``disarm(_:)``), so nothing waits on behalf of a query that is over.
package final class QueryWatchdog: Sendable {
    /// An armed deadline, to disarm it.
    package struct Ticket: Hashable, Sendable {
        let id: UInt64
    }

    private struct Entry {
        var deadline: UInt64
        var action: @Sendable () -> Void
    }

    private struct State {
        var armed: [UInt64: Entry] = [:]
        var nextID: UInt64 = 0
        var started = false
        /// The deadline the thread sleeps until (`.max`: until signalled).
        var sleepingUntil: UInt64 = .max
    }

    /// The process's watchdog, which every ``CleanRoomDatabase`` uses.
    package static let shared = QueryWatchdog()

    private let state = Mutex(State())
    private let waker = DispatchSemaphore(value: 0)

    /// Creates one; its thread starts at the first ``arm(after:_:)`` and lives as long as the process (so does the
    /// watchdog: make one per process, or a few in tests).
    package init() {}

    /// The monotonic clock in nanoseconds.
    package static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// `duration` in whole nanoseconds, 0 if negative, saturating (a limit of centuries is no limit).
    package static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        guard seconds < 1 << 33 else { return .max }
        return UInt64(seconds) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    /// Run `action` on the watchdog's thread once `delay` has passed (at once if it is not positive), unless
    /// ``disarm(_:)`` comes first. Never earlier than `delay`; later only as late as the thread gets to run.
    package func arm(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> Ticket {
        let (sum, overflow) = Self.now().addingReportingOverflow(Self.nanoseconds(delay))
        let deadline = overflow ? UInt64.max : sum
        let (ticket, start, wake) = state.withLock { state -> (Ticket, Bool, Bool) in
            state.nextID += 1
            state.armed[state.nextID] = Entry(deadline: deadline, action: action)
            let start = !state.started
            state.started = true
            // The thread sleeps past this deadline: wake it to sleep less (once per earlier deadline).
            let wake = deadline < state.sleepingUntil
            if wake { state.sleepingUntil = deadline }
            return (Ticket(id: state.nextID), start, wake)
        }
        if start {
            let thread = Thread { [self] in
                // On the thread itself, glibc names it with prctl(PR_SET_NAME), which the sandbox allows.
                Thread.current.name = "cleanroom-watch"
                self.loop()
            }
            thread.stackSize = 1 << 20
            thread.start()
        } else if wake {
            waker.signal()
        }
        return ticket
    }

    /// Disarm `ticket`; true if its action had not run (nor begun to run) yet, false if it had.
    ///
    /// The thread is not woken: if this was the earliest deadline, it wakes then, finds nothing due and sleeps on.
    @discardableResult
    package func disarm(_ ticket: Ticket) -> Bool {
        state.withLock { $0.armed.removeValue(forKey: ticket.id) != nil }
    }

    /// Whether `ticket` is armed (neither disarmed nor due yet).
    package func isArmed(_ ticket: Ticket) -> Bool {
        state.withLock { $0.armed[ticket.id] != nil }
    }

    /// How many deadlines are armed.
    package var armedCount: Int {
        state.withLock { $0.armed.count }
    }

    private func loop() {
        var due: [@Sendable () -> Void] = []
        while true {
            let now = Self.now()
            let next = state.withLock { state -> UInt64 in
                var earliest = UInt64.max
                state.armed = state.armed.filter { _, entry in
                    guard entry.deadline > now else {
                        due.append(entry.action)
                        return false
                    }
                    earliest = min(earliest, entry.deadline)
                    return true
                }
                state.sleepingUntil = earliest
                return earliest
            }
            for action in due { action() }
            due.removeAll(keepingCapacity: true)
            if next == .max {
                waker.wait()
            } else {
                let (wait, passed) = next.subtractingReportingOverflow(Self.now())
                guard !passed, wait > 0 else { continue }
                _ = waker.wait(timeout: .now() + .nanoseconds(Int(clamping: wait)))
            }
        }
    }
}
