import EnclaveCore
import Foundation
import Synchronization
import Testing
import _EnclaveChannel

#if canImport(Glibc)
import Glibc
#endif

/// A hostile enclave against its host's threads: part of a frame, then silence.
@Suite("Channel: a partial frame from the peer")
struct PartialFrameTests {
    /// A peer in caller-reads mode whose remote end answers the first requests, then sends the first bytes of a
    /// frame header for the next and goes silent (the socket stays open until `shutdown`).
    final class PoisonedPeer: Sendable {
        let peer: RPCPeer
        let remote: FrameChannel

        /// Requests answered before the partial frame: back-to-back calls, so that the caller reads its own answers
        /// (the channel's thread reads only after a pause).
        static let answered = 50

        init() throws {
            var fds: [Int32] = [0, 0]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            peer = RPCPeer(
                channel: FrameChannel(fd: fds[0], maxFrameSize: 1 << 20),
                maxConcurrentRequests: 4,
                handler: { _, argument in Array(argument) }
            )
            peer.startCallerReads()
            remote = FrameChannel(fd: fds[1], maxFrameSize: 1 << 20)
            let remote = remote
            let reader = remote.makeReader()
            let script = Thread {
                var requests = 0
                while case .success(let frame) = reader.next(), frame.kind == .request {
                    requests += 1
                    if requests <= Self.answered {
                        try? remote.send(.response, callID: frame.callID, payload: [42])
                    } else {
                        // Five of a header's thirteen bytes, then nothing.
                        let partial: [UInt8] = [1, 0, 0, 0, 2]
                        _ = partial.withUnsafeBytes { send(remote.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                }
            }
            script.start()
        }

        func shutdown() { remote.shutdown() }
    }

    /// One thread that runs the jobs of the tasks that prefer it, in order: a stand-in for one of the host's
    /// executor threads that nothing else in the test run can occupy.
    final class ThreadExecutor: TaskExecutor, @unchecked Sendable {  // unchecked: `jobs` is guarded by `condition`
        private let condition = NSCondition()
        private var jobs: [UnownedJob] = []

        init() {
            let thread = Thread { [self] in
                while true {
                    condition.lock()
                    while jobs.isEmpty { condition.wait() }
                    let job = jobs.removeFirst()
                    condition.unlock()
                    job.runSynchronously(on: asUnownedTaskExecutor())
                }
            }
            thread.name = "partial-frame-test-executor"
            thread.start()
        }

        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            condition.lock()
            jobs.append(job)
            condition.signal()
            condition.unlock()
        }
    }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// The caller reads its own answers on its thread; when the peer sends part of a frame and then nothing, the
    /// caller must hand the rest to the channel's own thread and suspend, not sit in `read` for as long as the peer
    /// likes (with one such enclave per executor thread, nothing else in the host would run). The caller's thread
    /// is a dedicated one here, so the load of other tests cannot make it look blocked: a job queued behind the
    /// call runs once the call suspends.
    @Test func aPartialFrameDoesNotHoldTheCallersThread() async throws {
        let poisoned = try PoisonedPeer()
        let executor = ThreadExecutor()
        let answers = Counter()
        let call = Task(executorPreference: executor) { () -> EnclaveError? in
            do {
                for _ in 0..<PoisonedPeer.answered {
                    #expect(try await poisoned.peer.call(name: "c", argument: [1]) == [42])
                    answers.value.add(1, ordering: .relaxed)
                }
                // Part of a frame comes back, then nothing.
                _ = try await poisoned.peer.call(name: "c", argument: [2])
                return nil
            } catch let error as EnclaveError {
                return error
            } catch {
                return nil
            }
        }
        // A hang guard outside every executor: it ends the peer's socket (a blocked read then sees the end) so that
        // the test fails instead of hanging.
        let finished = DispatchSemaphore(value: 0)
        let watchdogFired = Flag()
        let watchdog = Thread {
            if finished.wait(timeout: .now() + 120) == .timedOut {
                watchdogFired.value.store(true, ordering: .relaxed)
                poisoned.shutdown()
            }
        }
        watchdog.start()
        let deadline = ContinuousClock.now + .seconds(300)  // a hang guard for the answered calls
        while answers.value.load(ordering: .relaxed) < PoisonedPeer.answered {
            guard ContinuousClock.now < deadline else {
                Issue.record("the answered calls did not complete")
                poisoned.shutdown()
                finished.signal()
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        // The job that counted the last answer went on to make the poisoned call: this one is queued behind it.
        let probe = await Task(executorPreference: executor) { 7 }.value
        finished.signal()
        let fired = watchdogFired.value.load(ordering: .relaxed)
        #expect(!fired, "the caller's thread stayed blocked in a partial frame")
        #expect(probe == 7)
        // The call is still pending; the peer's end fails it.
        poisoned.shutdown()
        let error = await call.value
        #expect(error?.code == .channelClosed, "\(String(describing: error))")
    }
}
