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
    /// A peer in caller-reads mode whose remote end answers the first requests, then sends the first bytes of a frame
    /// header for the second and goes silent (the socket stays open until `shutdown`).
    final class PoisonedPeer: Sendable {
        let peer: RPCPeer
        let remote: FrameChannel

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
                    if requests <= PoisonedPeer.answered {
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

        /// Requests answered before the partial frame: back-to-back calls, so that callers read their own answers
        /// (the channel's thread reads only after a pause).
        static let answered = 50
    }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// One poisoned peer per executor thread: each caller reads its own answer on its thread for a moment, and a
    /// caller that blocked until the rest of a frame arrived would hold that thread for as long as the enclave likes.
    /// Then nothing else in the process could run on Swift's cooperative pool. The callers must hand the partial
    /// frame to the channel's own thread instead, so other work keeps running and the calls stay pending.
    @Test func aPartialFrameDoesNotHoldTheCallersThread() async throws {
        let count = max(2, ProcessInfo.processInfo.activeProcessorCount)
        let peers = try (0..<count).map { _ in try PoisonedPeer() }
        // A watchdog outside the pool: if the pool is stuck, it ends the peers' sockets (the blocked reads then see
        // the end) so that the test fails instead of hanging.
        let finished = DispatchSemaphore(value: 0)
        let watchdogFired = Flag()
        let watchdog = Thread {
            if finished.wait(timeout: .now() + 20) == .timedOut {
                watchdogFired.value.store(true, ordering: .relaxed)
                for peer in peers { peer.shutdown() }
            }
        }
        watchdog.start()
        let calls = (0..<count).map { index in
            Task.detached { () -> EnclaveError? in
                do {
                    for _ in 0..<PoisonedPeer.answered {
                        #expect(try await peers[index].peer.call(name: "c", argument: [1]) == [42])
                    }
                    _ = try await peers[index].peer.call(name: "c", argument: [2])
                    return nil
                } catch let error as EnclaveError {
                    return error
                } catch {
                    return nil
                }
            }
        }
        // Work on the pool after the callers met the partial frames.
        try await Task.sleep(for: .milliseconds(300))
        let probes = await withTaskGroup(of: Int.self) { group in
            for value in 0..<count * 4 { group.addTask { value } }
            var sum = 0
            for await value in group { sum += value }
            return sum
        }
        finished.signal()
        let fired = watchdogFired.value.load(ordering: .relaxed)
        #expect(!fired, "the callers' threads stayed blocked in a partial frame")
        #expect(probes == (0..<count * 4).reduce(0, +))
        // The calls are still pending; the peer's end fails them.
        for peer in peers { peer.shutdown() }
        for call in calls {
            let error = await call.value
            #expect(error?.code == .channelClosed, "\(String(describing: error))")
        }
    }
}
