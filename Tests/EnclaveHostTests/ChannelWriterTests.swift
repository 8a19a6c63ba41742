import EnclaveCore
import Foundation
import Synchronization
import Testing
import _EnclaveChannel

#if canImport(Glibc)
import Glibc
#endif

/// Several senders and the channel's writer thread against one socket: frames must leave whole and in the order the
/// channel accepted them, whatever the timing, and a peer that reads too slowly must not hold the writer for ever.
@Suite("Channel: concurrent senders and the writer thread", .serialized)
struct ChannelWriterTests {
    // MARK: Frames never interleave

    /// The window the review found: the writer thread has just sent the last byte of the queue and let go of the
    /// lock. A sender S arrives then (queue empty, nobody busy) and, before the fix, wrote inline; its frame does not
    /// fit the socket, so it went on writing without the lock while S2 queued behind it; the writer thread came back,
    /// found S2's frame and wrote it into the middle of S's. The hook runs S and S2 exactly in that window.
    @Test func aSenderInTheWritersWindowDoesNotInterleave() throws {
        let (local, remote) = try Self.socketPair(buffer: 8 << 10)
        // S may write inline for up to 10 s (so the window cannot close by itself before the writer comes back).
        let channel = FrameChannel(fd: local, maxFrameSize: 4 << 20, inlineWriteNanoseconds: 10_000_000_000)
        let reader = WireReader(fd: remote, byte: Self.byte(forCallID:))
        defer {
            channel.shutdown()
            reader.stop()
            close(remote)
        }
        let sizes: [UInt64: Int] = [0: 256 << 10, 1: 64 << 10, 2: 1 << 20, 3: 1000]
        reader.expect(bytes: sizes.values.reduce(0) { $0 + Frame.headerSize + $1 })
        let watchdog = PartialFrameTests.Watchdog(seconds: 60) {
            channel.shutdown()
            reader.stop()
        }
        defer { watchdog.finish() }

        // Frame 0 from another thread writes inline and blocks (the reader is held): the channel is busy.
        let first = Thread { try? channel.send(.request, callID: 0, payload: Self.payload(0, sizes[0]!)) }
        first.start()
        try #require(Self.wait { channel.writeStatus.busy }, "frame 0 did not block the channel")
        // Frame 1 queues behind it; once frame 0 is out, the writer thread sends frame 1.
        try channel.send(.request, callID: 1, payload: Self.payload(1, sizes[1]!))
        #expect(channel.writeStatus.waitingFrames == 1)

        let fired = Locked(false)
        let sDone = Locked(false)
        let inWindow = Locked<String?>(nil)
        defer { channel.setWriterSentFrameHook(nil) }
        channel.setWriterSentFrameHook {
            guard !fired.exchange(true) else { return }
            // The writer thread sent frame 1's last byte and let go of the lock.
            reader.hold()
            let sender = Thread {
                do {
                    try channel.send(.request, callID: 2, payload: Self.payload(2, sizes[2]!))
                } catch {
                    inWindow.value = "S failed: \(error)"
                }
                sDone.value = true
            }
            sender.start()
            // S either writes inline (busy: the bug's first step) or queues its frame.
            guard Self.wait({ sDone.value || channel.writeStatus.busy }) else {
                inWindow.value = "S neither sent nor queued its frame"
                reader.release()
                return
            }
            do {
                try channel.send(.request, callID: 3, payload: Self.payload(3, sizes[3]!))
            } catch {
                inWindow.value = "S2 failed: \(error)"
            }
            reader.release()
        }
        reader.release()

        let outcome = reader.waitForAll(timeoutSeconds: 30)
        #expect(fired.value, "the writer thread never finished a frame")
        #expect(inWindow.value == nil, "\(inWindow.value ?? "")")
        #expect(outcome.error == nil, "\(outcome.error ?? "")")
        #expect(outcome.frames.map(\.callID) == [0, 1, 2, 3], "frames left out of the order they were accepted in")
        #expect(outcome.frames.map(\.length) == [0, 1, 2, 3].map { sizes[$0]! })
        #expect(channel.writeFailure == nil, "\(String(describing: channel.writeFailure))")
    }

    /// Many senders, small socket buffers and a slow reader: every frame arrives whole (its payload all its
    /// sender's byte), each sender's frames in the order it sent them, nothing lost, nothing traps.
    @Test func manySendersAndASlowReaderKeepEveryFrameWhole() throws {
        let (local, remote) = try Self.socketPair(buffer: 16 << 10)
        let channel = FrameChannel(fd: local, maxFrameSize: 1 << 20)
        let senders = 8
        let framesPerSender = 200
        let size = 48 << 10
        let reader = WireReader(fd: remote, pauseMicroseconds: 100, byte: Self.byte(forCallID:))
        defer {
            channel.shutdown()
            reader.stop()
            close(remote)
        }
        reader.expect(bytes: senders * framesPerSender * (Frame.headerSize + size))
        let watchdog = PartialFrameTests.Watchdog(seconds: 120) {
            channel.shutdown()
            reader.stop()
        }
        defer { watchdog.finish() }
        // The writer thread is now and then descheduled right after a frame (as on a loaded machine): the window in
        // which a sender used to slip in front of it.
        channel.setWriterSentFrameHook { usleep(50) }
        defer { channel.setWriterSentFrameHook(nil) }
        reader.release()
        let failures = Locked<[String]>([])
        let done = DispatchGroup()
        for sender in 0..<senders {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                for sequence in 0..<framesPerSender {
                    let callID = UInt64(sender) << 32 | UInt64(sequence)
                    let payload = Self.payload(callID, size)
                    while true {
                        do {
                            try channel.send(.request, callID: callID, payload: payload)
                            break
                        } catch let error as EnclaveError where error.code == .limitExceeded {
                            usleep(1000)  // the queue is full: the peer is behind; try again
                        } catch {
                            failures.mutate { $0.append("sender \(sender) frame \(sequence): \(error)") }
                            return
                        }
                    }
                    // Now and then a pause, so that the queue empties and senders find the channel idle again.
                    // Every fourth frame a pause, so that the queue empties now and then and senders find the
                    // channel idle (the window above) as well as busy.
                    if sequence % 4 == sender % 4 { usleep(2000) }
                }
            }
            thread.start()
        }
        let outcome = reader.waitForAll(timeoutSeconds: 90)
        #expect(done.wait(timeout: .now() + 30) == .success, "senders did not finish")
        #expect(failures.value.isEmpty, "\(failures.value)")
        #expect(outcome.error == nil, "\(outcome.error ?? "")")
        #expect(outcome.frames.count == senders * framesPerSender)
        // Each sender's frames in its own order.
        var next = [UInt64](repeating: 0, count: senders)
        var outOfOrder = 0
        for frame in outcome.frames {
            let sender = Int(frame.callID >> 32)
            guard sender < senders else {
                outOfOrder += 1
                continue
            }
            if frame.callID & 0xFFFF_FFFF != next[sender] { outOfOrder += 1 }
            next[sender] = (frame.callID & 0xFFFF_FFFF) + 1
        }
        #expect(outOfOrder == 0, "\(outOfOrder) frames out of their sender's order")
        #expect(channel.writeFailure == nil, "\(String(describing: channel.writeFailure))")
    }

    // MARK: A peer that reads a trickle

    /// A peer that never stops reading entirely, but reads far slower than the channel's minimum drain rate: before,
    /// each byte it took restarted the stall limit, so it could hold the queue and the writer thread for ever. The
    /// channel must fail by name. (The peer here reads about 50 KB/s against a 1 MiB/s minimum and a 1 s stall
    /// limit: the failure comes after about 1 s; scheduling delays only slow the peer further.)
    @Test func aPeerThatReadsATrickleFailsTheChannel() throws {
        let (local, remote) = try Self.socketPair(buffer: 8 << 10)
        let channel = FrameChannel(
            fd: local,
            maxFrameSize: 4 << 20,
            writeStallNanoseconds: 1_000_000_000,
            minimumDrainBytesPerSecond: 1 << 20
        )
        let stop = Locked(false)
        let trickle = Thread {
            var buffer = [UInt8](repeating: 0, count: 512)
            while !stop.value {
                let got = buffer.withUnsafeMutableBytes { recv(remote, $0.baseAddress, 512, Int32(MSG_DONTWAIT)) }
                if got == 0 { return }
                usleep(10_000)
            }
        }
        defer {
            stop.value = true
            channel.shutdown()
            close(remote)
        }
        try channel.send(.request, callID: 1, payload: [UInt8](repeating: 9, count: 4 << 20))
        trickle.start()
        // A hang guard, not a timing bet: the failure is due after about 1 s.
        let failed = Self.wait(seconds: 60) { channel.writeFailure != nil }
        #expect(failed, "a peer reading a trickle kept the channel's queue and writer for 60 s")
        let failure = try #require(channel.writeFailure)
        #expect(failure.code == .channelClosed, "\(failure)")
        #expect(failure.reason.contains("slower than"), "\(failure)")
        #expect(channel.isClosed)
        #expect(throws: EnclaveError.channelClosed("")) { try channel.send(.request, callID: 2, payload: [1]) }
    }

    // MARK: The drain deadline, on a clock the test drives

    static let second: UInt64 = 1_000_000_000

    /// The review's peer: one byte every 29 s against a 30 s stall limit. The stall rule alone never fires; the rate
    /// rule ends it at about 30 s.
    @Test func oneBytePer29SecondsRunsOutOfTime() {
        var deadline = FrameChannel.DrainDeadline(
            now: 0,
            stallNanoseconds: 30 * Self.second,
            minimumBytesPerSecond: 64 << 10
        )
        deadline.sent(1, at: 29 * Self.second)
        #expect(!deadline.expired(at: 29 * Self.second))
        #expect(deadline.expired(at: 30 * Self.second + Self.second / 1000))
        #expect(!deadline.stalled(at: 30 * Self.second + Self.second / 1000), "it is the rate, not a stall")
        // With the rate rule off, the same peer never runs out (the old behaviour).
        var stallOnly = FrameChannel.DrainDeadline(now: 0, stallNanoseconds: 30 * Self.second, minimumBytesPerSecond: 0)
        for step in 1...100 {
            stallOnly.sent(1, at: UInt64(step) * 29 * Self.second)
            #expect(!stallOnly.expired(at: UInt64(step) * 29 * Self.second + 28 * Self.second))
        }
    }

    /// A peer that keeps pace on average never runs out, however long it reads; after a burst it may pause up to the
    /// stall limit, and not longer.
    @Test func aPeerThatKeepsPaceNeverRunsOut() {
        var deadline = FrameChannel.DrainDeadline(
            now: 0,
            stallNanoseconds: 30 * Self.second,
            minimumBytesPerSecond: 64 << 10
        )
        for step in 1...10_000 {
            let now = UInt64(step) * Self.second
            #expect(!deadline.expired(at: now))
            deadline.sent(64 << 10, at: now)
            #expect(deadline.remaining(at: now) == 30 * Self.second, "capped at the stall limit from the last byte")
        }
        // A burst of 1 GiB does not buy more than the stall limit of silence.
        let now = 10_001 * Self.second
        deadline.sent(1 << 30, at: now)
        #expect(!deadline.expired(at: now + 30 * Self.second - 1))
        #expect(deadline.expired(at: now + 30 * Self.second))
        #expect(deadline.stalled(at: now + 30 * Self.second))
    }

    /// Half the minimum rate: the time in hand shrinks by half a second per second, so it runs out after about
    /// `stall * R / (R - r)` = 60 s (59 s here: the first second is read at its end); nothing read at all runs out at
    /// exactly the stall limit.
    @Test func aPeerAtHalfTheMinimumRateRunsOutAfterTwiceTheStallLimit() {
        var deadline = FrameChannel.DrainDeadline(
            now: 0,
            stallNanoseconds: 30 * Self.second,
            minimumBytesPerSecond: 64 << 10
        )
        var expiredAt: UInt64?
        for step in 1...200 {
            let now = UInt64(step) * Self.second
            if deadline.expired(at: now) {
                expiredAt = UInt64(step)
                break
            }
            deadline.sent(32 << 10, at: now)
        }
        #expect(expiredAt == 59, "\(String(describing: expiredAt))")
        let idle = FrameChannel.DrainDeadline(now: 5, stallNanoseconds: 30 * Self.second, minimumBytesPerSecond: 1)
        #expect(!idle.expired(at: 5 + 30 * Self.second - 1))
        #expect(idle.expired(at: 5 + 30 * Self.second))
        #expect(idle.stalled(at: 5 + 30 * Self.second))
        // Saturating arithmetic at the clock's end.
        var late = FrameChannel.DrainDeadline(now: .max - 10, stallNanoseconds: .max, minimumBytesPerSecond: 1)
        late.sent(.max, at: .max - 5)
        #expect(late.deadline == .max)
    }

    // MARK: Helpers

    /// A connected pair whose send and receive buffers are about `buffer` bytes.
    static func socketPair(buffer: Int32) throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds {
            var size = buffer
            try #require(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size)) == 0)
            try #require(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) == 0)
        }
        return (fds[0], fds[1])
    }

    /// Every frame's payload is one byte throughout, chosen by its call ID (its sender's byte in the stress test).
    static func byte(forCallID callID: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: (callID >> 32) &* 37 &+ (callID & 0xFFFF_FFFF) &* 11 &+ 0x5A)
    }

    static func payload(_ callID: UInt64, _ size: Int) -> [UInt8] {
        [UInt8](repeating: byte(forCallID: callID), count: size)
    }

    /// Poll `condition` every 50 us for up to `seconds`; whether it held.
    static func wait(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { return false }
            usleep(50)
        }
        return true
    }
}

/// A value behind a lock, shared with other threads.
final class Locked<Value: Sendable>: Sendable {
    private let lock: Mutex<Value>

    init(_ value: Value) { lock = Mutex(value) }

    var value: Value {
        get { lock.withLock { $0 } }
        set { lock.withLock { $0 = newValue } }
    }

    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&$0) } }

    /// Store `newValue` and return what was there.
    func exchange(_ newValue: Value) -> Value {
        lock.withLock { value in
            defer { value = newValue }
            return value
        }
    }
}

/// The peer's end in these tests: reads the socket on its own thread (when not held), and checks the stream frame
/// by frame as it comes: every header sane, every payload all the byte its call ID names.
final class WireReader: Sendable {
    struct Received: Sendable {
        let callID: UInt64
        let length: Int
    }

    struct Outcome: Sendable {
        var frames: [Received] = []
        /// The first thing wrong with the stream (it cannot be followed after that).
        var error: String?
        var bytes = 0
        var expected = Int.max
        var finished = false
    }

    private let fd: Int32
    private let held = Atomic<Bool>(true)
    private let stopped = Atomic<Bool>(false)
    private let outcome = Mutex(Outcome())
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - pauseMicroseconds: A pause after each read (a slow peer).
    ///   - byte: The byte every payload byte of a frame with this call ID must be.
    init(fd: Int32, pauseMicroseconds: UInt32 = 0, byte: @escaping @Sendable (UInt64) -> UInt8) {
        self.fd = fd
        let thread = Thread { [self] in
            var parser = Parser(byte: byte)
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while !stopped.load(ordering: .relaxed) {
                if held.load(ordering: .relaxed) {
                    usleep(50)
                    continue
                }
                var request = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&request, 1, 10) > 0 else { continue }
                let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if got < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                if got <= 0 { break }
                let done = outcome.withLock { outcome -> Bool in
                    outcome.bytes += got
                    if outcome.error == nil {
                        buffer.withUnsafeBytes { raw in
                            parser.take(UnsafeRawBufferPointer(rebasing: raw[0..<got]), into: &outcome)
                        }
                    }
                    return outcome.bytes >= outcome.expected || outcome.error != nil
                }
                if done { break }
                if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
            }
            outcome.withLock { $0.finished = true }
            finished.signal()
        }
        thread.name = "wire-reader"
        thread.start()
    }

    /// Stop once this many bytes came.
    func expect(bytes: Int) { outcome.withLock { $0.expected = bytes } }
    /// Stop reading (the socket fills up) / read again.
    func hold() { held.store(true, ordering: .relaxed) }
    func release() { held.store(false, ordering: .relaxed) }
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Wait until all expected bytes came, the stream went wrong or ended, or `timeoutSeconds` passed.
    func waitForAll(timeoutSeconds: Int) -> Outcome {
        if finished.wait(timeout: .now() + .seconds(timeoutSeconds)) == .timedOut {
            stop()
            _ = finished.wait(timeout: .now() + .seconds(5))
            var result = outcome.withLock { $0 }
            result.error = result.error ?? "timed out with \(result.bytes) of \(result.expected) bytes"
            return result
        }
        let result = outcome.withLock { $0 }
        if result.error == nil && result.bytes != result.expected {
            var short = result
            short.error = "the stream ended after \(result.bytes) of \(result.expected) bytes"
            return short
        }
        return result
    }

    /// Follows frames across reads.
    struct Parser {
        let byte: @Sendable (UInt64) -> UInt8
        var header: [UInt8] = []
        var callID: UInt64 = 0
        var length = 0
        var left = 0
        var expectedByte: UInt8 = 0
        /// 64 KiB of `expectedByte`, to compare payload bytes against in bulk.
        var reference: [UInt8] = []
        /// Frames bigger than this are a sign that the stream is out of sync.
        static let maxLength = 4 << 20

        init(byte: @escaping @Sendable (UInt64) -> UInt8) { self.byte = byte }

        mutating func take(_ bytes: UnsafeRawBufferPointer, into outcome: inout Outcome) {
            var position = 0
            while position < bytes.count && outcome.error == nil {
                if left == 0 && header.count < Frame.headerSize {
                    let step = min(Frame.headerSize - header.count, bytes.count - position)
                    header.append(contentsOf: bytes[position..<position + step])
                    position += step
                    guard header.count == Frame.headerSize else { continue }
                    length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16 | Int(header[3]) << 24
                    callID = header[5...].reversed().reduce(0) { $0 << 8 | UInt64($1) }
                    guard header[4] == Frame.Kind.request.rawValue, length <= Self.maxLength else {
                        outcome.error = "frame \(outcome.frames.count): header \(header) is not a request header"
                        return
                    }
                    expectedByte = byte(callID)
                    reference = [UInt8](repeating: expectedByte, count: 64 << 10)
                    left = length
                    if left == 0 { finish(into: &outcome) }
                    continue
                }
                let step = min(left, bytes.count - position, reference.count)
                let same = reference.withUnsafeBytes {
                    memcmp(bytes.baseAddress! + position, $0.baseAddress!, step) == 0
                }
                for index in position..<position + step where !same && bytes[index] != expectedByte {
                    outcome.error =
                        "frame \(outcome.frames.count) (call \(callID)): byte \(length - left + index - position) is "
                        + "\(bytes[index]), not \(expectedByte): another frame's bytes inside it"
                    return
                }
                position += step
                left -= step
                if left == 0 { finish(into: &outcome) }
            }
        }

        private mutating func finish(into outcome: inout Outcome) {
            outcome.frames.append(Received(callID: callID, length: length))
            header.removeAll(keepingCapacity: true)
        }
    }
}
