internal import CEnclaveSystem
public import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#endif

/// A framed, full-duplex byte channel over a connected stream socket.
///
/// One dedicated thread reads and parses frames and hands each to `onFrame`; writers serialise on a lock and write
/// header and payload with one `sendmsg`, never waiting for the peer in it: when the peer's socket buffer is full the
/// sender waits for it on its own thread for at most 2 ms, without the lock, then leaves the rest of its frame to the
/// channel's writer thread and returns. Frames sent meanwhile wait in order behind it (at most ``maxWaitingBytes``), so
/// frames never interleave on the wire. A peer that reads none of the waiting bytes for ``writeStallNanoseconds``, or
/// reads them on average slower than ``minimumDrainBytesPerSecond``, fails the channel. A frame header that announces
/// more than `maxFrameSize` bytes, an unknown kind, or any read error closes the channel: the stream can no longer be
/// trusted to be in sync.
///
/// Who writes the socket (the invariant the send path keeps): at any time at most one party writes it, and frames
/// leave in the order the channel accepted them. The parties are
/// 1. a sender writing inline under the lock: only when no one else may write (`!busy && !writerRunning` and nothing
///    waits, so it is also next in order);
/// 2. that same sender, without the lock, once the peer's buffer filled (`busy`): it set `busy` under the lock while
///    it was the only party, and while `busy` holds every other sender queues (rule 1 fails) and the writer thread is
///    neither started (`startWriterIfNeeded` requires `!busy`) nor running (it was not running when the sender went
///    inline, and only `startWriterIfNeeded` starts it). When it stops it either finished its frame or puts the rest
///    at the front of the queue: nobody wrote from the queue meanwhile, so no queued frame is begun (offset 0), and
///    every queued frame was accepted after its frame. It then clears `busy` and starts the writer if frames wait;
/// 3. the writer thread, while `writerRunning`: rule 1 fails while it runs, `busy` cannot be set, and it alone
///    removes frames from the front; it clears `writerRunning` (under the lock) only when nothing waits or the
///    channel failed, so a sender that goes inline afterwards is again next in order.
/// Frames join the queue only at its end (in the order the lock admitted their senders), except for rule 2's rest,
/// which goes first because its frame was accepted before all of them. Anything that contradicts this (a begun frame
/// where the rest must go, an empty queue where the writer sent a frame) fails the channel by name rather than mix
/// frames or trap.
public final class FrameChannel: Sendable {
    /// The socket; closed when the channel is released.
    public let fd: Int32
    /// The largest payload accepted or sent.
    public let maxFrameSize: Int
    /// Whether readers of this channel spin before blocking, and where the peer runs (see `SpinPolicy`).
    package let spin: SpinPolicy
    /// Serialises writers; holds the CPU last announced in a placement frame and the frames waiting to be sent.
    private let writeLock = Mutex(WriteState())
    private let state = Mutex(State())
    /// How long frames may wait to be sent while the peer reads none of their bytes before the channel fails.
    public let writeStallNanoseconds: UInt64
    /// The default ``writeStallNanoseconds``: 30 seconds.
    public static let defaultWriteStallNanoseconds: UInt64 = 30_000_000_000
    /// The slowest average rate, in bytes per second, at which the peer may read the frames waiting to be sent (after
    /// the ``writeStallNanoseconds`` of grace); 0 turns the rule off.
    public let minimumDrainBytesPerSecond: UInt64
    /// The default ``minimumDrainBytesPerSecond``: 64 KiB/s.
    public static let defaultMinimumDrainBytesPerSecond: UInt64 = 64 << 10

    /// The most bytes that may wait to be sent (see ``send(_:callID:prefix:payload:)``): twice the largest frame, at
    /// least 64 MiB.
    public var maxWaitingBytes: Int { max(64 << 20, 2 * maxFrameSize + 64) }
    /// How long a sender waits on its own thread for the peer to take the rest of its frame before the channel's
    /// writer thread takes it over.
    package let inlineWriteNanoseconds: UInt64
    /// The default `inlineWriteNanoseconds`: 2 ms.
    package static let defaultInlineWriteNanoseconds: UInt64 = 2_000_000
    /// Tests only: runs on the writer thread right after it sent a frame's last byte and let go of the lock.
    private let writerSentFrameHook = Mutex<(@Sendable () -> Void)?>(nil)

    private struct State {
        var closed = false
        var started = false
    }

    private struct WriteState {
        /// The CPU last announced in a placement frame (-1: none yet).
        var announced = -1
        /// A sender writes the rest of a frame without the lock (the peer's buffer was full): others queue theirs.
        var busy = false
        /// Frames (the first may be the rest of one) waiting for the peer to read, in order, and their bytes; the
        /// first `waitingOffset` bytes of the first are sent.
        var waiting: [[UInt8]] = []
        var waitingOffset = 0
        var waitingBytes = 0
        /// Whether the writer thread is sending `waiting`.
        var writerRunning = false
        /// Why sending failed for good (the channel is shut down).
        var failure: EnclaveError?
    }

    /// Wrap a connected socket. The channel owns `fd` from now on.
    ///
    /// With `announcesPlacement` the channel sends placement frames from its first frame on (the enclave's side);
    /// without, only once the peer sent one.
    ///
    /// - Parameters:
    ///   - fd: A connected stream socket.
    ///   - maxFrameSize: The largest payload accepted or sent.
    ///   - announcesPlacement: Whether this side sends placement frames from its first frame on.
    ///   - writeStallNanoseconds: How long the peer may read nothing of the frames waiting to be sent.
    ///   - minimumDrainBytesPerSecond: The slowest average rate at which the peer may read them (0: no such rule).
    public convenience init(
        fd: Int32,
        maxFrameSize: Int,
        announcesPlacement: Bool = false,
        writeStallNanoseconds: UInt64 = FrameChannel.defaultWriteStallNanoseconds,
        minimumDrainBytesPerSecond: UInt64 = FrameChannel.defaultMinimumDrainBytesPerSecond
    ) {
        self.init(
            fd: fd,
            maxFrameSize: maxFrameSize,
            announcesPlacement: announcesPlacement,
            writeStallNanoseconds: writeStallNanoseconds,
            minimumDrainBytesPerSecond: minimumDrainBytesPerSecond,
            inlineWriteNanoseconds: FrameChannel.defaultInlineWriteNanoseconds
        )
    }

    /// A channel whose senders wait `inlineWriteNanoseconds` on their own thread for a full socket (tests).
    package init(
        fd: Int32,
        maxFrameSize: Int,
        announcesPlacement: Bool = false,
        writeStallNanoseconds: UInt64 = FrameChannel.defaultWriteStallNanoseconds,
        minimumDrainBytesPerSecond: UInt64 = FrameChannel.defaultMinimumDrainBytesPerSecond,
        inlineWriteNanoseconds: UInt64
    ) {
        self.fd = fd
        self.writeStallNanoseconds = writeStallNanoseconds
        self.minimumDrainBytesPerSecond = minimumDrainBytesPerSecond
        self.inlineWriteNanoseconds = inlineWriteNanoseconds
        self.maxFrameSize = maxFrameSize
        self.spin = SpinPolicy(announcing: announcesPlacement)
    }

    /// Tests only: `hook` runs on the channel's writer thread each time it has sent the last byte of a waiting frame,
    /// right after it let go of the lock (`nil` removes it).
    package func setWriterSentFrameHook(_ hook: (@Sendable () -> Void)?) {
        writerSentFrameHook.withLock { $0 = hook }
    }

    /// A snapshot of the sending side (tests).
    package struct WriteStatus: Sendable {
        /// A sender is writing the rest of its frame without the lock.
        package var busy: Bool
        /// The writer thread is sending the waiting frames.
        package var writerRunning: Bool
        /// How many frames (the first may be the rest of one) and bytes wait to be sent.
        package var waitingFrames: Int
        package var waitingBytes: Int
    }

    /// The sending side now (tests).
    package var writeStatus: WriteStatus {
        writeLock.withLock { state in
            WriteStatus(
                busy: state.busy,
                writerRunning: state.writerRunning,
                waitingFrames: state.waiting.count,
                waitingBytes: state.waitingBytes
            )
        }
    }

    deinit { close(fd) }

    /// Start the reader thread. `onFrame` runs on that thread for every frame, in order; `onClose` runs once when
    /// the stream ends (EOF, error or protocol violation) with the reason.
    public func start(
        onFrame: @escaping @Sendable (Frame) -> Void,
        onClose: @escaping @Sendable (EnclaveError) -> Void
    ) {
        let alreadyStarted = state.withLock { state -> Bool in
            defer { state.started = true }
            return state.started
        }
        precondition(!alreadyStarted, "FrameChannel.start called twice")
        let thread = Thread { [self] in
            let reason = self.readLoop(onFrame)
            self.shutdown()
            onClose(reason)
        }
        thread.name = "enclave-channel"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Send one frame. Throws `channelClosed` if the peer is gone, `limitExceeded` if the payload is too large.
    /// `prefix` (small) and `payload` are sent back to back as one frame payload, without concatenating them.
    ///
    /// When this side announces its placement and the sending thread runs on another CPU than it last announced, a
    /// placement frame goes first, in the same `sendmsg`.
    public func send(_ kind: Frame.Kind, callID: UInt64, prefix: [UInt8] = [], payload: [UInt8]) throws(EnclaveError) {
        let failure = prefix.withUnsafeBytes { prefixBytes in
            payload.withUnsafeBytes { payloadBytes -> EnclaveError? in
                do throws(EnclaveError) {
                    try send(kind, callID: callID, prefixBytes, payloadBytes)
                    return nil
                } catch {
                    return error
                }
            }
        }
        if let failure { throw failure }
    }

    /// ``send(_:callID:prefix:payload:)`` from raw buffers.
    package func send(
        _ kind: Frame.Kind,
        callID: UInt64,
        _ prefix: UnsafeRawBufferPointer,
        _ payload: UnsafeRawBufferPointer
    ) throws(EnclaveError) {
        let total = prefix.count + payload.count
        guard total <= maxFrameSize, let length = UInt32(exactly: total) else {
            throw .limitExceeded("frame of \(total) bytes exceeds the \(maxFrameSize)-byte limit")
        }
        let cpu = spin.announces ? Int(ek_current_cpu()) : -1
        // Header, prefix and payload go out in one sendmsg from where they are: no concatenation, no allocation.
        var header: (UInt64, UInt64) = (0, 0)
        var placement: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let failure = withUnsafeMutableBytes(of: &header) { headerBytes in
            Self.storeHeader(into: headerBytes, kind: kind, callID: callID, length: length)
            return withUnsafeMutableBytes(of: &placement) { placementBytes in
                let headerPart = UnsafeRawBufferPointer(rebasing: headerBytes[0..<Frame.headerSize])
                return sendFrame(cpu: cpu, placementBytes: placementBytes, header: headerPart, prefix, payload)
            }
        }
        if let failure { throw failure }
    }

    /// Why sending failed for good, if it has (the channel is then shut down).
    package var writeFailure: EnclaveError? { writeLock.withLock { $0.failure } }

    private typealias Parts = (
        UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer
    )

    private enum Written {
        case all
        case blocked
        case failed
    }

    /// Send one frame (see ``send(_:callID:prefix:payload:)``); the error, or `nil` when it is sent or waits its turn.
    private func sendFrame(
        cpu: Int,
        placementBytes: UnsafeMutableRawBufferPointer,
        header: UnsafeRawBufferPointer,
        _ prefix: UnsafeRawBufferPointer,
        _ payload: UnsafeRawBufferPointer
    ) -> EnclaveError? {
        var parts: Parts = (UnsafeRawBufferPointer(start: nil, count: 0), header, prefix, payload)
        let first = writeLock.withLock { state -> (failure: EnclaveError?, blocked: Bool) in
            if let failure = state.failure { return (failure, false) }
            var placementPart = UnsafeRawBufferPointer(start: nil, count: 0)
            if cpu >= 0 && cpu != state.announced, let value = UInt32(exactly: cpu) {
                Self.storeHeader(into: placementBytes, kind: .placement, callID: 0, length: 4)
                placementBytes.storeBytes(of: value.littleEndian, toByteOffset: Frame.headerSize, as: UInt32.self)
                placementPart = UnsafeRawBufferPointer(rebasing: placementBytes[0..<Frame.headerSize + 4])
            }
            parts.0 = placementPart
            if state.busy || state.writerRunning || !state.waiting.isEmpty {
                // Another party writes (an inline sender or the writer thread, which may be between two frames with
                // an empty queue): this frame waits behind what is queued, copied.
                let size = Self.count(parts)
                guard state.waitingBytes == 0 || state.waitingBytes + size <= maxWaitingBytes else {
                    return (
                        .limitExceeded(
                            "the peer has not read the \(state.waitingBytes) bytes already waiting to be sent"
                        ),
                        false
                    )
                }
                state.waiting.append(Self.copy(parts))
                state.waitingBytes += size
                if !placementPart.isEmpty { state.announced = cpu }
                startWriterIfNeeded(&state)
                return (nil, false)
            }
            switch Self.writeSome(fd: fd, &parts) {
            case .all:
                if !placementPart.isEmpty { state.announced = cpu }
                return (nil, false)
            case .failed:
                return (.channelClosed("the peer closed the channel"), false)
            case .blocked:
                if !placementPart.isEmpty { state.announced = cpu }
                state.busy = true
                return (nil, true)
            }
        }
        if let failure = first.failure { return failure }
        guard first.blocked else { return nil }
        // The peer's buffer is full: wait for it here, without the lock, for a while; then leave the rest to the
        // writer thread rather than hold this (executor) thread for as long as the peer likes.
        let deadline = SpinPolicy.now() &+ inlineWriteNanoseconds
        while true {
            var request = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&request, 1, 1)
            let written = Self.writeSome(fd: fd, &parts)
            if written == .blocked && SpinPolicy.now() < deadline { continue }
            let outcome = writeLock.withLock { state -> (failure: EnclaveError?, shut: Bool) in
                state.busy = false
                switch written {
                case .all:
                    break
                case .failed:
                    Self.fail(&state, .channelClosed("the peer closed the channel"))
                    return (.channelClosed("the peer closed the channel"), false)
                case .blocked:
                    // Nobody wrote from the queue while this sender was busy (see the type's invariant): the rest of
                    // its frame goes first, before frames that are all still whole.
                    guard state.waitingOffset == 0, !state.writerRunning else {
                        let failure = EnclaveError.channelClosed(
                            "the send queue is out of step (a queued frame was begun while a sender wrote); channel closed"
                        )
                        Self.fail(&state, failure)
                        return (failure, true)
                    }
                    let rest = Self.copy(parts)
                    state.waiting.insert(rest, at: 0)
                    state.waitingBytes += rest.count
                }
                startWriterIfNeeded(&state)
                return (nil, false)
            }
            if outcome.shut { shutdown() }
            return outcome.failure
        }
    }

    private static func count(_ parts: Parts) -> Int { parts.0.count + parts.1.count + parts.2.count + parts.3.count }

    private static func copy(_ parts: Parts) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(count(parts))
        bytes.append(contentsOf: parts.0)
        bytes.append(contentsOf: parts.1)
        bytes.append(contentsOf: parts.2)
        bytes.append(contentsOf: parts.3)
        return bytes
    }

    /// Start the writer thread when frames wait and no one sends them.
    private func startWriterIfNeeded(_ state: inout WriteState) {
        guard !state.writerRunning, !state.busy, !state.waiting.isEmpty, state.failure == nil else { return }
        state.writerRunning = true
        let thread = Thread { [self] in self.sendWaiting() }
        thread.name = "enclave-channel-writer"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// The writer thread: send the waiting frames as the peer reads them; fail the channel when the peer reads nothing
    /// for ``writeStallNanoseconds`` or, on average, slower than ``minimumDrainBytesPerSecond`` (see `DrainDeadline`).
    /// Ends once nothing waits (or, defensively, when a sender is busy: that sender starts it again).
    private func sendWaiting() {
        var drain = DrainDeadline(
            now: SpinPolicy.now(),
            stallNanoseconds: writeStallNanoseconds,
            minimumBytesPerSecond: minimumDrainBytesPerSecond
        )
        while true {
            let next = writeLock.withLock { state -> ([UInt8], Int)? in
                guard state.failure == nil, !state.busy, let first = state.waiting.first else {
                    state.writerRunning = false
                    return nil
                }
                return (first, state.waitingOffset)
            }
            guard let (chunk, offset) = next else { return }
            var request = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let left = drain.remaining(at: SpinPolicy.now())
            _ = poll(&request, 1, Int32(min(1000, (left + 999_999) / 1_000_000)))
            let written = chunk.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            let error = errno
            if written > 0 {
                drain.sent(written, at: SpinPolicy.now())
                let step = writeLock.withLock { state -> EnclaveError?? in
                    // Failed meanwhile (the queue is already dropped): stop quietly.
                    guard state.failure == nil else {
                        state.writerRunning = false
                        return .some(nil)
                    }
                    // Only this thread takes from the queue's front while it runs: anything else is a broken
                    // invariant, and the channel fails by name rather than trap or send a frame twice.
                    guard let first = state.waiting.first, first.count == chunk.count, state.waitingOffset == offset
                    else {
                        return .some(
                            .channelClosed("the send queue changed under the channel's writer; channel closed")
                        )
                    }
                    state.waitingOffset += written
                    state.waitingBytes -= written
                    if state.waitingOffset == chunk.count {
                        state.waiting.removeFirst()
                        state.waitingOffset = 0
                    }
                    return nil
                }
                if let stop = step {
                    if let failure = stop { failWrites(failure) }
                    return
                }
                if offset + written == chunk.count, let hook = writerSentFrameHook.withLock({ $0 }) { hook() }
                if !drain.expired(at: SpinPolicy.now()) { continue }
            } else if written == 0 || (error != EAGAIN && error != EWOULDBLOCK && error != EINTR) {
                failWrites(.channelClosed("the peer closed the channel"))
                return
            }
            let now = SpinPolicy.now()
            guard drain.expired(at: now) else { continue }
            let waiting = writeLock.withLock { $0.waitingBytes }
            let seconds = Double(writeStallNanoseconds) / 1e9
            if drain.stalled(at: now) {
                failWrites(
                    .channelClosed("the peer read nothing of the \(waiting) bytes waiting to be sent for \(seconds) s")
                )
            } else {
                failWrites(
                    .channelClosed(
                        "the peer read the \(waiting) bytes waiting to be sent slower than the minimum of "
                            + "\(minimumDrainBytesPerSecond) bytes/s"
                    )
                )
            }
            return
        }
    }

    /// Sending failed for good: drop what waits, remember why, and shut the socket down (readers then see the end).
    private func failWrites(_ failure: EnclaveError) {
        writeLock.withLock { state in Self.fail(&state, failure) }
        shutdown()
    }

    /// Drop what waits and remember why sending failed (the first reason wins); the writer thread stops.
    private static func fail(_ state: inout WriteState, _ failure: EnclaveError) {
        state.failure = state.failure ?? failure
        state.waiting.removeAll()
        state.waitingBytes = 0
        state.waitingOffset = 0
        state.writerRunning = false
    }

    private static func storeHeader(
        into bytes: UnsafeMutableRawBufferPointer,
        kind: Frame.Kind,
        callID: UInt64,
        length: UInt32
    ) {
        bytes.storeBytes(of: length.littleEndian, toByteOffset: 0, as: UInt32.self)
        bytes.storeBytes(of: kind.rawValue, toByteOffset: 4, as: UInt8.self)
        bytes.storeBytes(of: callID.littleEndian, toByteOffset: 5, as: UInt64.self)
    }

    /// Stop both directions; the reader thread then sees EOF and reports the close.
    public func shutdown() {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        if first { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Whether ``shutdown()`` ran or the reader saw the end.
    public var isClosed: Bool { state.withLock { $0.closed } }

    // MARK: I/O

    /// Write the parts back to back with `sendmsg` without waiting, resuming after partial writes, until all are sent,
    /// the peer's buffer is full (`parts` then holds what is left) or the write fails.
    private static func writeSome(fd: Int32, _ parts: inout Parts) -> Written {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: 4) { vectors in
            while true {
                var count = 0
                func add(_ part: UnsafeRawBufferPointer) {
                    guard let base = part.baseAddress, !part.isEmpty else { return }
                    vectors[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: part.count)
                    count += 1
                }
                add(parts.0)
                add(parts.1)
                add(parts.2)
                add(parts.3)
                if count == 0 { return .all }
                // MSG_NOSIGNAL: a vanished peer is an error to report, not a SIGPIPE to die of. MSG_DONTWAIT: a peer
                // that does not read must not hold this thread.
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = count
                let written = sendmsg(fd, &message, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno == EAGAIN || errno == EWOULDBLOCK ? .blocked : .failed
                }
                var remaining = written
                func advance(_ part: inout UnsafeRawBufferPointer) {
                    let step = min(remaining, part.count)
                    part = UnsafeRawBufferPointer(rebasing: part[step...])
                    remaining -= step
                }
                advance(&parts.0)
                advance(&parts.1)
                advance(&parts.2)
                advance(&parts.3)
            }
        }
    }

    /// Read frames until the stream ends; returns why it ended.
    private func readLoop(_ onFrame: @Sendable (Frame) -> Void) -> EnclaveError {
        let reader = makeReader()
        while true {
            switch reader.next() {
            case .success(let frame): onFrame(frame)
            case .failure(let reason): return reason
            }
        }
    }

    /// A reader for callers that run their own read loop (one reader at a time).
    package func makeReader() -> FrameReader { FrameReader(fd: fd, maxFrameSize: maxFrameSize, spin: spin) }
}

/// Reads and parses frames from a socket through a buffer.
///
/// Only one thread may call ``next()`` at a time; callers serialise it (the dedicated reader thread, or the
/// enclave's leader/follower workers, which hand the reader from one thread to the next under a lock).
///
/// Every wait for bytes first spins when the channel's `SpinPolicy` says the peer runs on another CPU: it reads with
/// `MSG_DONTWAIT` until bytes come or the spin runs out, then blocks in `read`.
///
/// A payload larger than half the buffer is read straight into its own array, as its bytes come: ``next()`` blocks
/// until all are there, ``wholeFrameReady()`` takes what the socket holds without waiting, and either may finish a
/// frame the other began.
package final class FrameReader: @unchecked Sendable {  // unchecked: access is serialised by the caller (see above)
    private let fd: Int32
    private let maxFrameSize: Int
    private let spin: SpinPolicy
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0
    private var end = 0
    /// A frame too large for the buffer whose payload is being read into its own array.
    private var large: LargeFrame?
    /// How many bytes were read from the socket so far: a caller waiting for a frame tells progress by it.
    package private(set) var bytesReceived = 0

    private struct LargeFrame {
        let kind: Frame.Kind
        let callID: UInt64
        /// All of the payload's length; bytes from `filled` on are not read yet (never handed out before they are).
        var payload: [UInt8]
        var filled: Int
    }

    private struct Header {
        let rawKind: UInt8
        let callID: UInt64
        let length: Int
    }

    init(fd: Int32, maxFrameSize: Int, spin: SpinPolicy) {
        self.fd = fd
        self.maxFrameSize = maxFrameSize
        self.spin = spin
    }

    /// Read up to `count` bytes into `target`, spinning first when the policy says so; `read`'s result (and errno).
    private func readSome(_ target: UnsafeMutableRawPointer, _ count: Int) -> Int {
        let got = spinRead(target, count) ?? read(fd, target, count)
        if got > 0 { bytesReceived += got }
        return got
    }

    /// Read up to `count` bytes without blocking, looking again until bytes come or the spin runs out (`nil`: it ran
    /// out, or the policy says block at once). EOF and errors other than `EAGAIN` are returned as `recv` gave them.
    private func spinRead(_ target: UnsafeMutableRawPointer, _ count: Int, extraNanoseconds: UInt64 = 0) -> Int? {
        guard let deadline = spin.spinDeadline(extraNanoseconds: extraNanoseconds) else { return nil }
        while true {
            let got = recv(fd, target, count, Int32(MSG_DONTWAIT))
            if got >= 0 {
                spin.spinPaidOff()
                return got
            }
            let error = errno
            if error == EINTR { continue }
            // Not a socket (a test's pipe): read as before.
            if error == ENOTSOCK { return nil }
            if error != EAGAIN && error != EWOULDBLOCK { return got }
            if SpinPolicy.now() >= deadline {
                spin.spinRanOut()
                return nil
            }
            ek_spin_pause()
        }
    }

    /// Spin for the next bytes into the buffer when the policy says so (the caller then reads without waiting),
    /// `extraNanoseconds` longer than usual. Returns whether anything is buffered now, or the stream ended
    /// (``next()`` then reports it); `false` when the caller must wait for the socket to become readable.
    package func spinForBytes(extraNanoseconds: UInt64 = 0) -> Bool {
        if end > start { return true }
        if var frame = large {
            large = nil
            defer { large = frame }
            if frame.filled == frame.payload.count { return true }
            let filled = frame.filled
            let got = frame.payload.withUnsafeMutableBytes { raw in
                spinRead(raw.baseAddress! + filled, raw.count - filled, extraNanoseconds: extraNanoseconds)
            }
            guard let got else { return false }
            if got > 0 {
                frame.filled += got
                bytesReceived += got
            }
            return true
        }
        start = 0
        end = 0
        let got = buffer.withUnsafeMutableBytes { raw in
            spinRead(raw.baseAddress!, raw.count, extraNanoseconds: extraNanoseconds)
        }
        guard let got else { return false }
        if got > 0 {
            end = got
            bytesReceived += got
        }
        // EOF or an error: the next read sees it again and reports it.
        return true
    }

    /// Move the buffered bytes to the buffer's start.
    private func compact() {
        let pending = end - start
        if start > 0 && pending > 0 {
            let from = start
            buffer.withUnsafeMutableBytes { raw in _ = memmove(raw.baseAddress!, raw.baseAddress! + from, pending) }
        }
        start = 0
        end = pending
    }

    /// Make sure at least `count` bytes are buffered at `start`, reading more as needed.
    private func fill(_ count: Int) -> EnclaveError? {
        if buffer.count - start < count {
            if count > buffer.count {
                let pending = end - start
                var fresh = [UInt8](repeating: 0, count: count)
                if pending > 0 { fresh[0..<pending] = buffer[start..<end] }
                buffer = fresh
                start = 0
                end = pending
            } else {
                compact()
            }
        }
        while end - start < count {
            let got = buffer.withUnsafeMutableBytes { raw in
                readSome(raw.baseAddress! + end, raw.count - end)
            }
            if got == 0 { return .channelClosed(end == start ? "end of stream" : "stream ended inside a frame") }
            if got < 0 {
                if errno == EINTR { continue }
                return .channelClosed("read failed (errno \(errno))")
            }
            end += got
        }
        return nil
    }

    /// Whether bytes of a next frame are already buffered (then ``next()`` must be called before waiting for the
    /// socket to become readable).
    package var hasBufferedBytes: Bool { end > start || large != nil }

    /// The header at `start` (at least ``Frame/headerSize`` bytes are buffered).
    private func bufferedHeader() -> Header {
        buffer.withUnsafeBytes { raw in
            Header(
                rawKind: raw[start + 4],
                callID: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 5, as: UInt64.self)),
                length: Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
            )
        }
    }

    /// Why a header cannot be followed (the stream is out of sync from there), or `nil`.
    private func refusal(_ header: Header) -> EnclaveError? {
        guard let kind = Frame.Kind(rawValue: header.rawKind) else {
            return .protocolViolation("unknown frame kind \(header.rawKind)")
        }
        guard header.length <= maxFrameSize else {
            return .protocolViolation(
                "peer announced a \(header.length)-byte frame, over the \(maxFrameSize)-byte limit"
            )
        }
        guard kind != .placement || header.length == 4 else {
            return .protocolViolation("placement frame of \(header.length) bytes (must be 4)")
        }
        return nil
    }

    /// Whether a payload of `length` bytes is read into its own array rather than through the buffer.
    private func isLarge(_ length: Int) -> Bool { length > buffer.count / 2 }

    /// Reads what the socket holds now, without waiting, and says whether ``next()`` would return without waiting for
    /// more bytes: a whole frame (header and announced payload) is buffered, a header announces what is refused (at
    /// once), or the stream ended or failed (reported at once). The payload of a large frame is read as it comes.
    ///
    /// A caller that reads on a thread it must not lose for long checks this first: a peer that sends part of a frame
    /// and then nothing would otherwise hold that thread in `read` for as long as it likes.
    package func wholeFrameReady() -> Bool {
        if large != nil { return receiveLarge() }
        if start == end {
            start = 0
            end = 0
        }
        if let verdict = bufferedVerdict() { return verdict }
        // Not all here: make room at the buffer's end for the rest of a frame that fits (a header split at the end
        // of the buffer included), then take what the socket holds.
        let buffered = end - start
        let needed = buffered < Frame.headerSize ? Frame.headerSize : Frame.headerSize + bufferedHeader().length
        if start + needed > buffer.count { compact() }
        if end < buffer.count {
            let got = buffer.withUnsafeMutableBytes { raw in
                recv(fd, raw.baseAddress! + end, raw.count - end, Int32(MSG_DONTWAIT))
            }
            if got == 0 { return true }
            if got > 0 {
                end += got
                bytesReceived += got
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                return true
            }
        }
        return bufferedVerdict() ?? false
    }

    /// `true` when a whole frame or a refused header is buffered, `nil` when more bytes are needed. A large frame's
    /// header begins that frame and reads what the socket holds of its payload (`false` if not all of it).
    private func bufferedVerdict() -> Bool? {
        guard end - start >= Frame.headerSize else { return nil }
        let header = bufferedHeader()
        if refusal(header) != nil { return true }
        if isLarge(header.length) {
            beginLarge(header)
            return receiveLarge()
        }
        return end - start >= Frame.headerSize + header.length ? true : nil
    }

    /// Start reading a large frame whose header (checked) is at `start`: its payload gets its own array, holding the
    /// bytes already buffered.
    private func beginLarge(_ header: Header) {
        start += Frame.headerSize
        let buffered = min(end - start, header.length)
        let from = start
        // The bytes past `buffered` are written by reads before the frame is handed out; if the stream fails first,
        // the array is discarded unread. No zero-filling: UInt8 has no invalid values and nothing reads them.
        let payload = [UInt8](unsafeUninitializedCapacity: header.length) { target, initialized in
            buffer.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(target).baseAddress!.copyMemory(
                    from: source.baseAddress! + from,
                    byteCount: buffered
                )
            }
            initialized = header.length
        }
        start += buffered
        if start == end {
            start = 0
            end = 0
        }
        // The kind was checked by `refusal`.
        large = LargeFrame(
            kind: Frame.Kind(rawValue: header.rawKind) ?? .response,
            callID: header.callID,
            payload: payload,
            filled: buffered
        )
    }

    /// Read what the socket holds of the large frame's payload without waiting. Returns whether ``next()`` would
    /// return without waiting: the payload is complete, or the stream ended or failed (``next()`` reports it).
    private func receiveLarge() -> Bool {
        guard var frame = large else { return true }
        large = nil
        defer { large = frame }
        var filled = frame.filled
        var ended = false
        frame.payload.withUnsafeMutableBytes { raw in
            while filled < raw.count {
                let got = recv(fd, raw.baseAddress! + filled, raw.count - filled, Int32(MSG_DONTWAIT))
                if got > 0 {
                    filled += got
                    continue
                }
                if got < 0 && errno == EINTR { continue }
                ended = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
                return
            }
        }
        bytesReceived += filled - frame.filled
        frame.filled = filled
        return ended || filled == frame.payload.count
    }

    /// Finish the large frame with blocking reads and return it.
    private func finishLarge() -> Result<Frame, EnclaveError> {
        guard var frame = large else { return .failure(.channelClosed("no frame in progress")) }
        large = nil
        var filled = frame.filled
        var failure: EnclaveError?
        frame.payload.withUnsafeMutableBytes { raw in
            while filled < raw.count {
                let got = readSome(raw.baseAddress! + filled, raw.count - filled)
                if got == 0 {
                    failure = .channelClosed("stream ended inside a frame")
                    return
                }
                if got < 0 {
                    if errno == EINTR { continue }
                    failure = .channelClosed("read failed (errno \(errno))")
                    return
                }
                filled += got
            }
        }
        // On failure the partly read payload is dropped with `frame`.
        if let failure { return .failure(failure) }
        return .success(Frame(kind: frame.kind, callID: frame.callID, payload: frame.payload))
    }

    /// The next frame, or why the stream can no longer be read.
    package func next() -> Result<Frame, EnclaveError> {
        if large != nil { return finishLarge() }
        if let failure = fill(Frame.headerSize) { return .failure(failure) }
        let header = bufferedHeader()
        if let refusal = refusal(header) { return .failure(refusal) }
        if isLarge(header.length) {
            // A large payload is read straight into its own array: no staging copy, no zero-filling.
            beginLarge(header)
            return finishLarge()
        }
        start += Frame.headerSize
        if let failure = fill(header.length) { return .failure(failure) }
        let payload = Array(buffer[start..<start + header.length])
        start += header.length
        if start == end {
            start = 0
            end = 0
        }
        // The kind was checked by `refusal`.
        let kind = Frame.Kind(rawValue: header.rawKind) ?? .response
        return .success(Frame(kind: kind, callID: header.callID, payload: payload))
    }
}
