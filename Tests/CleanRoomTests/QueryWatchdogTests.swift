import CleanRoomEngine
import Dispatch
import Synchronization
import Testing

/// The clean room's query watchdog: a deadline's action runs once it is due, never before, and never once disarmed;
/// disarmed deadlines leave nothing behind.
@Suite("Clean room query watchdog")
struct QueryWatchdogTests {
    @Test("an armed deadline runs its action once, not before it is due")
    func firesWhenDue() throws {
        let watchdog = QueryWatchdog()
        let fired = Mutex<[Int: UInt64]>([:])
        let done = DispatchSemaphore(value: 0)
        var armed: [Int: UInt64] = [:]
        // Deadlines out of order, some equal, one already past.
        let delays: [Duration] = [.milliseconds(40), .zero, .milliseconds(5), .milliseconds(40), .seconds(-1)]
        for (index, delay) in delays.enumerated() {
            armed[index] = QueryWatchdog.now() + QueryWatchdog.nanoseconds(delay)
            _ = watchdog.arm(after: delay) {
                fired.withLock { $0[index] = QueryWatchdog.now() }
                done.signal()
            }
        }
        // Generous: a loaded machine only makes the thread late.
        for _ in delays { #expect(done.wait(timeout: .now() + .seconds(120)) == .success) }
        let times = fired.withLock { $0 }
        #expect(times.count == delays.count)
        for (index, time) in times {
            let deadline = try #require(armed[index])
            #expect(time >= deadline, "deadline \(index) ran early")
        }
        #expect(watchdog.armedCount == 0)
    }

    @Test("a disarmed deadline never runs, and leaves nothing armed")
    func disarmedNeverRuns() {
        let watchdog = QueryWatchdog()
        let ran = Mutex(0)
        let tickets = (0..<1000).map { _ in watchdog.arm(after: .seconds(3600)) { ran.withLock { $0 += 1 } } }
        #expect(watchdog.armedCount == 1000)
        for ticket in tickets {
            #expect(watchdog.isArmed(ticket))
            #expect(watchdog.disarm(ticket))
            #expect(!watchdog.isArmed(ticket))
        }
        #expect(watchdog.armedCount == 0)
        #expect(!watchdog.disarm(tickets[0]), "disarmed twice")

        // A deadline that ran: disarming it afterwards says so.
        let done = DispatchSemaphore(value: 0)
        let due = watchdog.arm(after: .zero) { done.signal() }
        #expect(done.wait(timeout: .now() + .seconds(120)) == .success)
        #expect(!watchdog.disarm(due))
        #expect(ran.withLock { $0 } == 0)
    }

    @Test("durations convert to nanoseconds, negative as 0 and huge ones saturating")
    func nanoseconds() {
        #expect(QueryWatchdog.nanoseconds(.milliseconds(1500)) == 1_500_000_000)
        #expect(QueryWatchdog.nanoseconds(.nanoseconds(7)) == 7)
        #expect(QueryWatchdog.nanoseconds(.seconds(-3)) == 0)
        #expect(QueryWatchdog.nanoseconds(.seconds(Int64.max)) == .max)
    }
}
