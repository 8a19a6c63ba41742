public import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// One end of the call protocol over a ``FrameChannel``: outgoing calls with their pending continuations, incoming
/// requests dispatched to a handler, pings answered on the reader thread.
///
/// Both the host (ECALLs out, OCALLs in) and the enclave (OCALLs out, ECALLs in) use it.
public final class RPCPeer: Sendable {
    /// Serves an incoming request: the call name and its encoded argument, returning the encoded result.
    public typealias Handler = @Sendable (_ name: String, _ argument: ArraySlice<UInt8>) async throws -> [UInt8]

    /// The framed socket this peer calls and serves over; ``FrameChannel/shutdown()`` on it fails every pending call.
    public let channel: FrameChannel
    private let handler: Handler
    private let limiter: AsyncLimiter
    private let maxQueuedRequests: Int
    private let maxQueuedBytes: Int
    private let state = Mutex(State())
    private let closeReason: @Sendable (EnclaveError) -> EnclaveError
    /// Set by ``startCallerReads()``: callers read their own answers.
    private let leadership = Mutex<ReadLeadership?>(nil)

    /// A call's place in the pending table.
    enum Slot {
        /// Sent; its caller is reading the channel itself and has no continuation.
        case reading
        /// Sent; its caller is suspended on this continuation.
        case waiting(CheckedContinuation<[UInt8], any Error>)
        /// Answered before its caller suspended.
        case done(Result<[UInt8], EnclaveError>)
    }

    private struct State {
        var nextCallID: UInt64 = 1
        var pending: [UInt64: Slot] = [:]
        /// How many slots are `.waiting`: callers that need someone else to read for them.
        var waiters = 0
        var closed: EnclaveError?
        var closeWaiters: [CheckedContinuation<EnclaveError, Never>] = []
        /// Incoming requests accepted and not yet answered (running or waiting for the limiter), and their bytes.
        var queuedRequests = 0
        var queuedBytes = 0
    }

    /// Create a peer.
    /// - Parameters:
    ///   - channel: the framed socket.
    ///   - maxConcurrentRequests: how many incoming requests run at once; the rest wait in order.
    ///   - maxQueuedRequests: how many incoming requests may be accepted and unanswered at once (running or
    ///     waiting); one more is refused with `limitExceeded` on the reader thread, before any task is created.
    ///   - maxQueuedBytes: the same bound on the payload bytes those requests hold. A request larger than this is
    ///     still accepted when nothing else is queued, so one maximum-size frame always gets through.
    ///   - closeReason: maps the channel's close reason to the error pending calls fail with.
    ///   - handler: serves incoming requests.
    public init(
        channel: FrameChannel,
        maxConcurrentRequests: Int,
        maxQueuedRequests: Int = .max,
        maxQueuedBytes: Int = .max,
        closeReason: @escaping @Sendable (EnclaveError) -> EnclaveError = { $0 },
        handler: @escaping Handler
    ) {
        self.channel = channel
        self.handler = handler
        self.limiter = AsyncLimiter(limit: max(1, maxConcurrentRequests))
        self.maxQueuedRequests = max(1, maxQueuedRequests)
        self.maxQueuedBytes = max(0, maxQueuedBytes)
        self.closeReason = closeReason
    }

    /// Start reading. Call once.
    public func start() {
        channel.start(
            onFrame: { [self] frame in self.receive(frame) },
            onClose: { [self] reason in self.fail(with: self.closeReason(self.channel.writeFailure ?? reason)) }
        )
    }

    /// Start reading in the caller-reads mode (the host's channel to its enclave). Call once, instead of ``start()``.
    ///
    /// A caller whose answer is the next thing on the channel reads it on its own thread: it blocks in `poll`/`read`
    /// for at most `ReadLeadership.leadTimeoutMilliseconds`, so an answer reaches it with one wake-up of the
    /// kernel, as in a raw socket round trip, instead of two (reader thread, then the task's executor). At most one
    /// caller reads at a time; others wait as before. A dedicated thread reads whenever no caller does: for callers
    /// that waited, for requests from the other side, and to see the peer go away while nothing is in flight.
    public func startCallerReads() {
        let reads = ReadLeadership(reader: channel.makeReader(), fd: channel.fd)
        leadership.withLock { $0 = reads }
        let thread = Thread { [self] in reads.serve(self) }
        thread.name = "enclave-channel"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Call `name` on the other side with an encoded argument; returns the encoded result.
    public func call(name: String, argument: [UInt8]) async throws -> [UInt8] {
        try await send(.request, prefix: FramePayload.requestPrefix(name: name), payload: argument)
    }

    /// Echo `payload` through the other side's reader without any decoding.
    public func ping(_ payload: [UInt8]) async throws -> [UInt8] {
        try await send(.ping, payload: payload)
    }

    /// Wait until the channel closes; returns the reason.
    public func closed() async -> EnclaveError {
        await withCheckedContinuation { continuation in
            if let already = addCloseWaiter(continuation) { continuation.resume(returning: already) }
        }
    }

    private func addCloseWaiter(_ continuation: CheckedContinuation<EnclaveError, Never>) -> EnclaveError? {
        state.withLock { state in
            if let reason = state.closed { return reason }
            state.closeWaiters.append(continuation)
            return nil
        }
    }

    /// How many incoming requests are accepted and not yet answered, and the bytes they hold.
    package var queued: (requests: Int, bytes: Int) { state.withLock { ($0.queuedRequests, $0.queuedBytes) } }

    /// How many times a caller reading its own answer gave up waiting for the rest of a frame (caller-reads mode).
    package var partialWaitsTimedOut: Int {
        leadership.withLock { $0 }?.partialWaitsRanOut.load(ordering: .relaxed) ?? 0
    }

    /// The reason the channel closed, if it has.
    public var closeError: EnclaveError? { state.withLock { $0.closed } }

    private func send(_ kind: Frame.Kind, prefix: [UInt8] = [], payload: [UInt8]) async throws -> [UInt8] {
        let id = try payload.withUnsafeBytes { payloadBytes in try begin(kind, prefix: prefix, payload: payloadBytes) }
        return try await answer(to: id, sentBytes: prefix.count + payload.count)
    }

    /// Start a call whose argument is one block of bytes (a `[UInt8]` or `Data`), sent straight from `bytes`: the
    /// request carries exactly what `BinaryEncoder` writes for them (a present slot: 1, the length as a varint, the
    /// bytes), without encoding them into a new array first. `maxArgumentSize` is the encoder's limit for that
    /// encoding. Returns the call's ID for `answer(to:sentBytes:)`, which the caller must await.
    package func beginCall(
        name: String,
        byteBlock bytes: UnsafeRawBufferPointer,
        maxArgumentSize: Int
    ) throws(EnclaveError) -> UInt64 {
        var prefix = FramePayload.requestPrefix(name: name)
        let nameLength = prefix.count
        prefix.append(1)
        Varint.append(UInt64(bytes.count), to: &prefix)
        let encoded = prefix.count - nameLength + bytes.count
        guard encoded <= maxArgumentSize else {
            throw .limitExceeded("encoded value is \(encoded) bytes, over the \(maxArgumentSize)-byte limit")
        }
        return try begin(.request, prefix: prefix, payload: bytes)
    }

    /// Register a call and send its frame (`prefix` then `payload`); returns its ID.
    private func begin(
        _ kind: Frame.Kind,
        prefix: [UInt8],
        payload: UnsafeRawBufferPointer
    ) throws(EnclaveError) -> UInt64 {
        guard prefix.count + payload.count <= channel.maxFrameSize else {
            throw .limitExceeded(
                "call of \(payload.count) bytes exceeds the \(channel.maxFrameSize)-byte channel limit"
            )
        }
        let id = try register(.reading).get()
        let failure = prefix.withUnsafeBytes { prefixBytes -> EnclaveError? in
            do throws(EnclaveError) {
                try channel.send(kind, callID: id, prefixBytes, payload)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            _ = takePending(id)
            // Too much already waits to be sent: this call is refused, the channel stays.
            if failure.code == .limitExceeded { throw failure }
            throw closeError ?? closeReason(channel.writeFailure ?? failure)
        }
        return id
    }

    /// The answer to call `id` (from `beginCall(name:byteBlock:maxArgumentSize:)`): read here when this peer's
    /// callers read their own answers and no one else reads, else waited for. `sentBytes`, the request's size,
    /// lengthens the first spin for the answer across CPUs.
    package func answer(to id: UInt64, sentBytes: Int = 0) async throws -> [UInt8] {
        let reads = leadership.withLock { $0 }
        if let reads, let answer = reads.lead(for: id, peer: self, sentBytes: sentBytes) { return try answer.get() }
        return try await wait(for: id, reads: reads)
    }

    /// Suspend until call `id` is answered (or take its answer if it came already).
    private func wait(for id: UInt64, reads: ReadLeadership?) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            let immediate = state.withLock { state -> Result<[UInt8], EnclaveError>? in
                switch state.pending[id] {
                case .done(let result)?:
                    state.pending[id] = nil
                    return result
                case .reading?:
                    state.pending[id] = .waiting(continuation)
                    state.waiters += 1
                    return nil
                case .waiting?, nil:
                    return .failure(state.closed ?? .channelClosed("call \(id) was lost"))
                }
            }
            if let immediate {
                continuation.resume(with: immediate)
            } else {
                reads?.needReader()
            }
        }
    }

    private func register(_ slot: Slot) -> Result<UInt64, EnclaveError> {
        state.withLock { state in
            if let closed = state.closed { return .failure(closed) }
            let id = state.nextCallID
            state.nextCallID &+= 1
            state.pending[id] = slot
            if case .waiting = slot { state.waiters += 1 }
            return .success(id)
        }
    }

    private func takePending(_ id: UInt64) -> Slot? {
        state.withLock { state in
            let slot = state.pending.removeValue(forKey: id)
            if case .waiting? = slot { state.waiters -= 1 }
            return slot
        }
    }

    /// Deliver the answer to call `id`: resume its waiting caller, or keep it for a caller that reads.
    private func resolve(_ id: UInt64, _ result: Result<[UInt8], EnclaveError>) {
        let continuation = state.withLock { state -> CheckedContinuation<[UInt8], any Error>? in
            switch state.pending[id] {
            case .waiting(let continuation)?:
                state.pending[id] = nil
                state.waiters -= 1
                return continuation
            case .reading?:
                state.pending[id] = .done(result)
                return nil
            case .done?, nil:
                return nil
            }
        }
        continuation?.resume(with: result.mapError { $0 as any Error })
    }

    /// Take the answer to call `id` if it has come.
    func takeAnswer(_ id: UInt64) -> Result<[UInt8], EnclaveError>? {
        state.withLock { state in
            guard case .done(let result)? = state.pending[id] else { return nil }
            state.pending[id] = nil
            return result
        }
    }

    /// Whether a suspended caller needs someone to read for it.
    var hasWaiters: Bool { state.withLock { $0.waiters > 0 } }

    /// The channel ended: fail everything with the mapped reason.
    func channelEnded(_ reason: EnclaveError) {
        channel.shutdown()
        fail(with: closeReason(channel.writeFailure ?? reason))
    }

    /// Handle one incoming frame. Requests run as tasks that prefer `executor` when one is given (the enclave's
    /// worker threads run them inline), on the global pool otherwise.
    package func receive(_ frame: Frame, executor: (any TaskExecutor)? = nil) {
        switch frame.kind {
        case .response, .pong:
            resolve(frame.callID, .success(frame.payload))
        case .error:
            let (code, message) = FramePayload.parseError(frame.payload)
            resolve(frame.callID, .failure(Self.peerError(code: code, message: message)))
        case .ping:
            try? channel.send(.pong, callID: frame.callID, payload: frame.payload)
        case .placement:
            // Four bytes, checked by the reader.
            let cpu = frame.payload.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
            channel.spin.peerRuns(on: Int(cpu))
        case .request:
            let callID = frame.callID
            let size = frame.payload.count
            // Bounded before a task exists: a peer that sends requests faster than they are served is refused, not
            // buffered (each waiting task would hold its frame).
            let admitted = state.withLock { state -> Bool in
                guard state.queuedRequests < maxQueuedRequests,
                    state.queuedRequests == 0 || size <= maxQueuedBytes - state.queuedBytes
                else { return false }
                state.queuedRequests += 1
                state.queuedBytes += size
                return true
            }
            guard admitted else {
                reply(
                    error: .limitExceeded(
                        "too many requests waiting (at most \(maxQueuedRequests) and \(maxQueuedBytes) bytes)"
                    ),
                    to: callID
                )
                return
            }
            Task(executorPreference: executor) { [self] in
                await limiter.acquire()
                await self.serve(callID: callID, payload: frame.payload)
                limiter.release()
                state.withLock { state in
                    state.queuedRequests -= 1
                    state.queuedBytes -= size
                }
            }
        }
    }

    private func serve(callID: UInt64, payload: [UInt8]) async {
        guard let request = try? FramePayload.parseRequest(payload) else {
            reply(error: .malformedInput("call name is truncated or not UTF-8"), to: callID)
            return
        }
        let result: [UInt8]
        do {
            result = try await handler(request.name, request.argument)
        } catch let error as EnclaveError {
            reply(error: error, to: callID)
            return
        } catch {
            reply(error: .callFailed("\(request.name): \(error)"), to: callID)
            return
        }
        if result.count > channel.maxFrameSize {
            reply(
                error: .limitExceeded("\(request.name): result of \(result.count) bytes exceeds the channel limit"),
                to: callID
            )
            return
        }
        try? channel.send(.response, callID: callID, payload: result)
    }

    private func reply(error: EnclaveError, to callID: UInt64) {
        try? channel.send(.error, callID: callID, payload: Self.errorPayload(error))
    }

    /// The payload of an error answer: the error's code when it is one that crosses (else `callFailed`) and its
    /// reason. A handler's error that is not an `EnclaveError` becomes `callFailed` with the call's name.
    package static func errorPayload(_ error: any Error, name: String? = nil) -> [UInt8] {
        let failure = error as? EnclaveError ?? .callFailed("\(name ?? "call"): \(error)")
        let code = reportableCodes.contains(failure.code) ? failure.code.description : "callFailed"
        return FramePayload.error(code: code, message: failure.reason)
    }

    /// The codes a failed call carries across the boundary: what the handler found wrong with the call, so that a
    /// caller can tell a refused seal from a malformed argument. Codes about a side's own state (terminated, channel
    /// closed, launch, sandbox) are never taken from the peer: any other code arrives as `callFailed`.
    static let reportableCodes: Set<EnclaveError.Code> = [
        .unknownCall, .malformedInput, .limitExceeded, .invalidConfiguration, .invalidSignature,
        .measurementMismatch, .debugNotAllowed, .unavailable,
    ]

    /// The error a peer's error frame stands for; a code outside ``reportableCodes`` becomes `callFailed`.
    static func peerError(code: String, message: String) -> EnclaveError {
        switch code {
        case EnclaveError.Code.unknownCall.description: .unknownCall(message)
        case EnclaveError.Code.malformedInput.description: .malformedInput(message)
        case EnclaveError.Code.limitExceeded.description: .limitExceeded(message)
        case EnclaveError.Code.invalidConfiguration.description: .invalidConfiguration(message)
        case EnclaveError.Code.invalidSignature.description: .invalidSignature(message)
        case EnclaveError.Code.measurementMismatch.description: .measurementMismatch(message)
        case EnclaveError.Code.debugNotAllowed.description: .debugNotAllowed(message)
        case EnclaveError.Code.unavailable.description: .unavailable(message)
        default: .callFailed(message)
        }
    }

    /// Fail every pending call and wake close waiters. Idempotent.
    public func fail(with error: EnclaveError) {
        let (pending, waiters) = state.withLock {
            state -> ([CheckedContinuation<[UInt8], any Error>], [CheckedContinuation<EnclaveError, Never>]) in
            guard state.closed == nil else { return ([], []) }
            state.closed = error
            var pending: [CheckedContinuation<[UInt8], any Error>] = []
            for (id, slot) in state.pending {
                switch slot {
                case .waiting(let continuation):
                    pending.append(continuation)
                    state.pending[id] = nil
                case .reading:
                    state.pending[id] = .done(.failure(error))
                case .done:
                    break
                }
            }
            state.waiters = 0
            let waiters = state.closeWaiters
            state.closeWaiters.removeAll()
            return (pending, waiters)
        }
        channel.shutdown()
        leadership.withLock { $0 }?.close()
        for continuation in pending { continuation.resume(throwing: error) }
        for waiter in waiters { waiter.resume(returning: error) }
    }
}
