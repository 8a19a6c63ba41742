internal import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// Who reads a channel in the caller-reads mode (``RPCPeer/startCallerReads()``): at most one caller waiting for its
/// own answer, or the dedicated thread.
///
/// A caller that finds no one reading blocks in `poll` on its own thread for at most ``leadTimeoutMilliseconds``, and
/// reads a frame only once all of it is there (waiting while its bytes keep coming, at most
/// ``partialFrameWaitNanoseconds`` without one), so a peer that sends part of a frame and then nothing cannot hold the
/// caller's thread; nor can one that keeps sending frames other than the answer: a caller reads for at most
/// ``leadBudgetNanoseconds`` in all. Its answer wakes it directly, as the answer of a raw socket round trip wakes the
/// process waiting for it. It delivers whatever else arrives meanwhile (other callers' answers, pings) and serves a
/// request (an OCALL made by the enclave's handler of this caller's ECALL) itself: the request's task prefers an
/// ``InlineExecutor`` this thread drains, so the handler runs here, now, without waking another thread, and its answer
/// goes out before the caller reads again. A handler that suspends continues on the global executor. It hands
/// reading to the dedicated thread when the answer takes longer, or when the channel ends (the thread reports the
/// end: mapping the reason may wait for the enclave process to exit).
///
/// While a caller serves a request nobody reads: the dedicated thread, which looks every ``idleGraceNanoseconds``
/// while a caller leads, takes reading over from a caller that has been serving the same request since its last
/// look (a slow OCALL handler, or one that waits for another ECALL's answer), and the caller then waits as others do.
///
/// The dedicated thread reads whenever callers are suspended waiting, when asked to, and once the channel has been
/// left alone for ``idleGraceNanoseconds``: then it blocks in `read`, so an idle channel costs no CPU and its end is
/// seen at once. It gives reading back after delivering an answer when no caller is left waiting. While a caller
/// reads, the thread looks again every ``idleGraceNanoseconds``.
final class ReadLeadership: @unchecked Sendable {  // unchecked: mutable state is guarded by `condition`
    /// The longest a caller blocks its thread reading before it suspends and lets the dedicated thread read.
    static let leadTimeoutMilliseconds: Int32 = 1
    /// How long reading may stay unclaimed before the dedicated thread takes it.
    static let idleGraceNanoseconds: UInt64 = 1_000_000

    private enum Leader {
        case none
        case caller
        case thread
    }

    private let condition = NSCondition()
    private var leader = Leader.none
    /// Counts claims of reading, so that a caller knows whether it still leads after serving a request.
    private var generation: UInt64 = 0
    /// Whether the leading caller serves a request (reads nothing meanwhile), and how many it started serving.
    private var callerServing = false
    private var servings: UInt64 = 0
    /// Runs requests' tasks on the leading caller's thread.
    private let inline = InlineExecutor()
    private var threadWanted = false
    private var ended: EnclaveError?
    private var closed = false
    /// How many calls still wait without trying to read, after a caller's window ran out.
    private var skipLeads = 0
    /// How many calls skip reading after a window ran out.
    static let timeoutBackoff = 16
    /// When a caller last gave reading up (monotonic nanoseconds).
    private var released: UInt64 = 0
    private let reader: FrameReader
    private let fd: Int32
    /// How many times a leading caller gave up on a frame of which no new byte came for
    /// ``partialFrameWaitNanoseconds`` (tests and benchmarks).
    let partialWaitsRanOut = Atomic<Int>(0)

    init(reader: FrameReader, fd: Int32) {
        self.reader = reader
        self.fd = fd
    }

    /// The longest a caller keeps reading in all, from claiming reading to giving it up: frames that are not its
    /// answer and the requests it serves meanwhile count too. A peer that never answers but keeps sending whole
    /// frames (placements, pongs for unknown calls, pings, cheap requests) would otherwise keep the caller's thread,
    /// one of the host's executor threads, for ever. Once it is spent the dedicated thread reads.
    static let leadBudgetNanoseconds: UInt64 = 2_000_000

    /// Read for call `id` on the calling thread if no one else reads. Returns its answer, or `nil` when the caller must
    /// suspend and wait for it (someone else reads, the answer is slow, a request came in, the budget
    /// ``leadBudgetNanoseconds`` is spent, or the channel ended).
    ///
    /// `sentBytes` is the size of the request: the first spin for its answer lasts that much longer (see
    /// `SpinPolicy.extraNanosecondsPerByteSent`).
    func lead(for id: UInt64, peer: RPCPeer, sentBytes: Int = 0) -> Result<[UInt8], EnclaveError>? {
        condition.lock()
        guard leader == .none, !closed, ended == nil else {
            condition.unlock()
            return nil
        }
        if skipLeads > 0 {
            skipLeads -= 1
            condition.unlock()
            return nil
        }
        leader = .caller
        generation &+= 1
        let claimed = generation
        condition.unlock()
        let budgetEnd = Self.now() &+ Self.leadBudgetNanoseconds
        var extra = UInt64(Double(max(0, sentBytes)) * SpinPolicy.extraNanosecondsPerByteSent)
        while true {
            defer { extra = 0 }
            if let answer = peer.takeAnswer(id) {
                release(peer: peer, wantThread: false)
                return answer
            }
            guard Self.now() < budgetEnd else {
                release(peer: peer, wantThread: true, timedOut: true)
                return nil
            }
            // Across CPUs the answer is spun for first (see `SpinPolicy`); poll only when it did not come meanwhile.
            if !reader.spinForBytes(extraNanoseconds: extra) {
                var request = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&request, 1, Self.leadTimeoutMilliseconds)
                if ready < 0 && errno == EINTR { continue }
                if ready == 0 {
                    release(peer: peer, wantThread: true, timedOut: true)
                    return nil
                }
                // Readable, hung up, or a poll error: the read reports which.
            }
            // Only a whole frame is read here: part of one, and the rest is left to the dedicated thread.
            guard reader.wholeFrameReady() || waitForWholeFrame(until: budgetEnd) else {
                release(peer: peer, wantThread: true, timedOut: true)
                return nil
            }
            switch reader.next() {
            case .failure(let reason):
                condition.lock()
                ended = reason
                leader = .none
                condition.broadcast()
                condition.unlock()
                return nil
            case .success(let frame):
                guard frame.kind == .request else {
                    peer.receive(frame)
                    continue
                }
                // Serve the request here and now; the dedicated thread takes reading over if this takes long.
                condition.lock()
                callerServing = true
                servings &+= 1
                condition.unlock()
                inline.beginDraining()
                peer.receive(frame, executor: inline)
                inline.runQueued()
                inline.endDraining()
                condition.lock()
                let leads = leader == .caller && generation == claimed
                if leads { callerServing = false }
                condition.unlock()
                if !leads { return nil }  // the dedicated thread reads now: wait for the answer as others do
            }
        }
    }

    /// The longest a leading caller waits for more of a frame whose first bytes came (a large frame still being
    /// copied in by the peer) while none come, before it leaves reading to the dedicated thread.
    static let partialFrameWaitNanoseconds: UInt64 = 2_000_000

    /// Wait for the frame whose first bytes are buffered to be whole, yielding the CPU between looks (on one vCPU the
    /// peer needs it to finish sending) and taking its bytes as they come (a frame larger than the socket's buffer is
    /// never all in the socket at once): at most ``partialFrameWaitNanoseconds`` without a new byte, and never past
    /// `budgetEnd`. `false`: not whole in time.
    private func waitForWholeFrame(until budgetEnd: UInt64) -> Bool {
        var received = reader.bytesReceived
        var quietSince = Self.now()
        while true {
            sched_yield()
            if reader.wholeFrameReady() { return true }
            let now = Self.now()
            if reader.bytesReceived != received {
                received = reader.bytesReceived
                quietSince = now
            } else if now >= quietSince &+ Self.partialFrameWaitNanoseconds {
                partialWaitsRanOut.add(1, ordering: .relaxed)
                return false
            }
            if now >= budgetEnd { return false }
        }
    }

    /// A caller suspended to wait: make sure someone reads.
    func needReader() {
        condition.lock()
        if leader == .none {
            threadWanted = true
            condition.signal()
        }
        condition.unlock()
    }

    /// The peer failed: the dedicated thread stops once it is not reading (a read sees the shut-down socket).
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func release(peer: RPCPeer, wantThread: Bool, timedOut: Bool = false) {
        condition.lock()
        leader = .none
        // Answers slower than the window: stop blocking callers' threads for a while (they wait as before), so a
        // busy enclave costs the host's executor at most one window per `timeoutBackoff + 1` calls.
        skipLeads = timedOut ? Self.timeoutBackoff : 0
        released = Self.now()
        if wantThread || peer.hasWaiters {
            threadWanted = true
            condition.signal()
        }
        condition.unlock()
    }

    /// The dedicated thread's loop: claim reading when needed, read until a caller could take over.
    func serve(_ peer: RPCPeer) {
        // The leading caller's count of served requests at the last look, while it served one.
        var seenServings: UInt64?
        while true {
            condition.lock()
            while true {
                if let ended {
                    condition.unlock()
                    peer.channelEnded(ended)
                    return
                }
                if closed {
                    condition.unlock()
                    return
                }
                if leader == .none {
                    let now = Self.now()
                    let idleSince = released &+ Self.idleGraceNanoseconds
                    if threadWanted || now >= idleSince || peer.hasWaiters {
                        leader = .thread
                        threadWanted = false
                        break
                    }
                    _ = condition.wait(until: Date(timeIntervalSinceNow: Double(idleSince - now) / 1e9))
                } else {
                    // A caller reads: take over from one that has served the same request since the last look.
                    if leader == .caller && callerServing {
                        if seenServings == servings {
                            leader = .thread
                            generation &+= 1
                            callerServing = false
                            seenServings = nil
                            break
                        }
                        seenServings = servings
                    } else {
                        seenServings = nil
                    }
                    _ = condition.wait(until: Date(timeIntervalSinceNow: Double(Self.idleGraceNanoseconds) / 1e9))
                }
            }
            condition.unlock()
            reading: while true {
                switch reader.next() {
                case .failure(let reason):
                    condition.lock()
                    closed = true
                    condition.unlock()
                    peer.channelEnded(reason)
                    return
                case .success(let frame):
                    peer.receive(frame)
                    let answer = frame.kind == .response || frame.kind == .error || frame.kind == .pong
                    if answer && !reader.hasBufferedBytes && !peer.hasWaiters {
                        condition.lock()
                        leader = .none
                        released = Self.now()
                        condition.unlock()
                        break reading
                    }
                }
            }
        }
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
