internal import CEnclaveSystem
internal import Dispatch
package import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// One thread serving one slot of a ``SwitchlessRing``: an enclave thread for an ECALL slot, a host thread for an
/// OCALL slot.
///
/// The thread spins on its slot's state word for the ring's worker spin, then sleeps on it (a futex the caller wakes
/// when it posts a request to a sleeping server): an idle server uses no CPU. It takes a snapshot of the slot's
/// words, checks it, copies the request out and parses only the copy, so a caller that rewrites the slot meanwhile
/// changes nothing it has read; a request too large for the slot, an unparsable one, a reserved or unknown call is
/// answered with an error, and a state that is not a request is left alone.
///
/// The thread runs one long-lived task whose preferred executor is this server: the task waits for requests and
/// calls their handlers directly, so a handler that completes without suspending costs no task, no job and no
/// hand-off. When a handler suspends, the thread runs this executor's jobs (the handler's resumption among them)
/// until the task goes on. Jobs that reach this executor while no handler runs go to `fallback`.
package final class SwitchlessServer: TaskExecutor, @unchecked Sendable {  // unchecked: mutable state behind `jobs`
    /// A call's handler: the encoded argument in, the encoded result out.
    package struct Handler: Sendable {
        /// Runs the call in the serving task (it may suspend).
        package var run: CallCodec.RawHandler
        /// Runs the call on the server's thread without a task, when set and ``limiter`` has a free permit (else
        /// ``run`` runs it).
        package var runInline: CallCodec.SyncRawHandler?
        /// The limit on concurrent calls ``runInline`` and ``runEmpty`` take a permit of (``run`` takes its own).
        package var limiter: AsyncLimiter?
        /// For a call that takes and returns `Empty` with a synchronous handler: the handler itself, run when the
        /// argument is the one encoding of `Empty` (any other bytes take ``runInline``, which refuses them). The
        /// server then answers the one encoding of `Empty` without building an array on either side.
        package var runEmpty: (@Sendable () throws -> Void)?

        package init(
            _ run: @escaping CallCodec.RawHandler,
            inline: CallCodec.SyncRawHandler? = nil,
            empty: (@Sendable () throws -> Void)? = nil,
            limiter: AsyncLimiter? = nil
        ) {
            self.run = run
            self.runInline = inline
            self.runEmpty = empty
            self.limiter = limiter
        }
    }

    /// A call name the server resolved, and its handler: kept for the server's life (``HandlerCache``).
    private final class Entry {
        let name: [UInt8]
        let handler: Handler

        init(name: [UInt8], handler: Handler) {
            self.name = name
            self.handler = handler
        }
    }

    /// The names a server resolved, at most ``cacheLimit``. Entries are held unmanaged (retained once, released
    /// with the cache) so that finding one costs no reference counting on the call's path.
    private final class HandlerCache {
        // Unchecked exclusivity: only the server's thread touches its cache, one access at a time.
        @exclusivity(unchecked) private(set) var entries: [Unmanaged<Entry>] = []
        /// The entry the last request named: looked at first.
        @exclusivity(unchecked) var last = 0

        /// Remember `handler` for `name`; a full cache forgets the entry after the last one used. Returns the index.
        func add(name: [UInt8], handler: Handler) -> Int {
            let entry = Unmanaged.passRetained(Entry(name: name, handler: handler))
            guard entries.count >= SwitchlessServer.cacheLimit else {
                entries.append(entry)
                last = entries.count - 1
                return last
            }
            let victim = (last + 1) % entries.count
            entries[victim].release()
            entries[victim] = entry
            last = victim
            return victim
        }

        /// The index of the entry named by the `count` bytes at `name`.
        func index(of name: UnsafeRawPointer, count: Int) -> Int? {
            let entries = self.entries
            if last < entries.count, Self.matches(entries[last], name, count) { return last }
            for index in entries.indices where index != last && Self.matches(entries[index], name, count) {
                last = index
                return index
            }
            return nil
        }

        private static func matches(_ entry: Unmanaged<Entry>, _ name: UnsafeRawPointer, _ count: Int) -> Bool {
            entry._withUnsafeGuaranteedRef { entry in
                entry.name.count == count
                    && (count == 0 || entry.name.withUnsafeBytes { memcmp($0.baseAddress!, name, count) == 0 })
            }
        }

        deinit {
            for entry in entries { entry.release() }
        }
    }
    /// The handler of a call name, or the error that answers the call (`unknownCall`).
    package typealias Resolve = @Sendable (String) throws -> Handler

    private struct Jobs {
        var queue: [UnownedJob] = []
        var head = 0
        /// A handler runs: jobs for this executor run on this thread.
        var serving = false
        /// The thread waits for jobs.
        var sleeping = false
        /// The serving task has ended (the ring closed).
        var finished = false
    }

    private let ring: SwitchlessRing
    private let slot: Int
    private let resolve: Resolve
    private let fallback: @Sendable (UnownedJob) -> Void
    private let jobs = Mutex(Jobs())
    private let wake = DispatchSemaphore(value: 0)
    /// How many names the server remembers the handler of.
    private static let cacheLimit = 16

    private init(
        ring: SwitchlessRing,
        slot: Int,
        resolve: @escaping Resolve,
        fallback: @escaping @Sendable (UnownedJob) -> Void
    ) {
        self.ring = ring
        self.slot = slot
        self.resolve = resolve
        self.fallback = fallback
    }

    /// Serve `slot` of `ring` on a new thread: `setup` runs first on it (naming it), `resolve` finds each call's
    /// handler (by name; a name is resolved once, then remembered), `fallback` takes jobs that reach the server while
    /// no handler runs. The thread ends when the ring closes.
    package static func start(
        ring: SwitchlessRing,
        slot: Int,
        setup: @escaping @Sendable () -> Void = {},
        resolve: @escaping Resolve,
        fallback: @escaping @Sendable (UnownedJob) -> Void
    ) {
        let server = SwitchlessServer(ring: ring, slot: slot, resolve: resolve, fallback: fallback)
        let thread = Thread {
            setup()
            server.run()
        }
        thread.stackSize = 2 << 20
        thread.start()
    }

    // MARK: Servers awake in this process

    private static let awake = Atomic<Int>(0)
    private static let serverKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Callers of this process spinning for an answer: a server then yields between looks rather than busy-spinning
    /// (the host's OCALL servers share the host's CPUs with its ECALL callers).
    private static let spinningCallers = Atomic<Int>(0)

    /// Count a caller of this process as spinning (`1`) or no longer (`-1`).
    package static func callerSpinning(_ delta: Int) { spinningCallers.add(delta, ordering: .relaxed) }

    /// Whether servers of this process other than the calling thread are awake (spinning or serving): a caller on
    /// this process then yields between looks rather than busy-spinning, as one of them may need its CPU.
    package static func othersAwake() -> Bool {
        let count = awake.load(ordering: .relaxed)
        guard count > 0 else { return false }
        return count > (pthread_getspecific(serverKey) != nil ? 1 : 0)
    }

    // MARK: The executor

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let action = jobs.withLock { jobs -> Int in
            guard jobs.serving else { return 0 }
            jobs.queue.append(job)
            guard jobs.sleeping else { return 1 }
            jobs.sleeping = false
            return 2
        }
        switch action {
        case 0: fallback(job)
        case 2: wake.signal()
        default: break
        }
    }

    private func run() {
        pthread_setspecific(Self.serverKey, UnsafeRawPointer(bitPattern: 1))
        Self.awake.add(1, ordering: .relaxed)
        // The serving task starts here, on this thread, and runs until a handler first suspends.
        Task.immediateDetached(executorPreference: self) {
            await self.serveRing()
            self.jobs.withLock { $0.finished = true }
            self.wake.signal()
        }
        // Then this thread runs the jobs of this executor (the serving task's resumptions among them) until the
        // serving task ends.
        while true {
            let next = jobs.withLock { jobs -> UnownedJob?? in
                if jobs.head < jobs.queue.count {
                    let job = jobs.queue[jobs.head]
                    jobs.head += 1
                    return .some(job)
                }
                jobs.queue.removeAll(keepingCapacity: true)
                jobs.head = 0
                if jobs.finished { return .none }
                jobs.sleeping = true
                return .some(nil)
            }
            guard let next else { break }
            if let next {
                next.runSynchronously(on: asUnownedTaskExecutor())
            } else {
                wake.wait()
            }
        }
        Self.awake.add(-1, ordering: .relaxed)
    }

    /// Jobs still queued when a handler has returned (a task it started and did not await, say) go to the fallback:
    /// this thread now waits for the next request and runs no jobs.
    private func stopServing() {
        let left = jobs.withLock { jobs -> ArraySlice<UnownedJob> in
            jobs.serving = false
            jobs.sleeping = false
            defer {
                jobs.queue.removeAll(keepingCapacity: true)
                jobs.head = 0
            }
            return jobs.queue[jobs.head...]
        }
        for job in left { fallback(job) }
    }

    // MARK: Serving

    /// A request whose handler runs in the serving task (it may suspend).
    private struct Pending {
        var sequence: UInt64
        var run: CallCodec.RawHandler
        /// The request's copy (the name's length and bytes, then the argument).
        var request: [UInt8]
        var argument: Range<Int>
    }

    /// Wait for requests and serve them until the ring closes.
    private func serveRing() async {
        let stateWord = ring.slotWord(slot, SwitchlessRing.stateOffset)
        let sleepingWord = ring.slotWord(slot, SwitchlessRing.workerSleepingOffset)
        let spin = UInt64(ring.workerSpinMicroseconds) * 1000
        let busySpin = ProcessInfo.processInfo.activeProcessorCount > 1
        let cache = HandlerCache()
        // The copy of each request, reused: a request costs no allocation once the buffer has grown to it.
        var request: [UInt8] = []
        // When the server last served (or woke), read from the clock only once it has spun 64 times without a
        // request: a call costs no clock reading, and calls coming back to back cost none at all. (The idle time is
        // counted from that first reading, a few hundred nanoseconds late: what `spin` bounds is still the time
        // spent spinning in vain, within that.)
        var idleSince: UInt64? = nil
        var spins = 0
        var yielding = false
        while !ring.isClosed {
            // Relaxed: only a look; `serveInline` takes the snapshot (with acquire) that everything read depends on.
            let observed = ek_atomic_load32_relaxed(stateWord)
            if observed == SwitchlessRing.State.request.rawValue || observed == SwitchlessRing.State.ping.rawValue {
                if let pending = serveInline(cache: cache, request: &request) {
                    await serve(pending)
                }
                idleSince = nil
                // 1, not 0: the CPU advice below is refreshed after 64 more looks, not right after every call (it
                // reads the CPU twice; advice that is one call old is as good).
                spins = 1
                continue
            }
            // Spin: busy while the caller runs on another CPU, yielding while it shares this one.
            if spins & 63 == 0 {
                if spins > 0 {
                    let now = Self.now()
                    if let since = idleSince {
                        if now &- since >= spin {
                            sleep(stateWord: stateWord, sleepingWord: sleepingWord)
                            idleSince = nil
                            spins = 0
                            continue
                        }
                    } else {
                        idleSince = now
                    }
                }
                ring.publishCPU(SwitchlessRing.workerCPUOffset, slot: slot)
                yielding =
                    !busySpin || ring.sharesCPU(with: SwitchlessRing.hostCPUOffset, slot: slot)
                    || Self.spinningCallers.load(ordering: .relaxed) > 0 || Self.othersAwake()
            }
            spins &+= 1
            if yielding {
                sched_yield()
            } else {
                ek_spin_pause()
            }
        }
    }

    /// Sleep until the caller changes the state word (it wakes a sleeping server after posting a request).
    private func sleep(stateWord: UnsafeMutablePointer<UInt32>, sleepingWord: UnsafeMutablePointer<UInt32>) {
        ek_atomic_store32(sleepingWord, 1)
        let current = ek_atomic_load32(stateWord)
        if current != SwitchlessRing.State.request.rawValue && current != SwitchlessRing.State.ping.rawValue
            && !ring.isClosed
        {
            Self.awake.add(-1, ordering: .relaxed)
            _ = ek_futex_wait(stateWord, current, -1)
            Self.awake.add(1, ordering: .relaxed)
        }
        ek_atomic_store32(sleepingWord, 0)
    }

    /// Serve the request in the slot on this thread, without a task: check and copy it (into `request`), find its
    /// handler and, when the handler runs inline and a permit is free, run it and write the answer. Returns the
    /// request when its handler must run in the serving task instead.
    private func serveInline(cache: HandlerCache, request: inout [UInt8]) -> Pending? {
        let snapshot = ring.snapshot(slot)
        let length: Int
        switch SwitchlessRing.checkRequest(snapshot, capacity: ring.capacity) {
        case .failure(let error):
            finish(sequence: snapshot.sequence, RPCPeer.errorPayload(error), .error)
            return nil
        case .success(let count):
            length = count
        }
        // Only the copy is parsed: what the caller writes into the slot from now on changes nothing read here.
        ring.copyOut(slot, count: length, into: &request)
        if snapshot.state == SwitchlessRing.State.ping.rawValue {
            finish(sequence: snapshot.sequence, request, .response)
            return nil
        }
        do {
            let (index, argument) = try lookUp(request, cache: cache)
            // The entry stays in the cache (retained) for the server's life: borrowed here, not retained.
            return try cache.entries[index]._withUnsafeGuaranteedRef { entry throws -> Pending? in
                if entry.handler.runEmpty != nil, Self.isEmptyEncoding(request, argument) {
                    if entry.handler.limiter?.tryAcquire() ?? true {
                        defer { entry.handler.limiter?.release() }
                        try entry.handler.runEmpty!()
                        publishEmpty(sequence: snapshot.sequence)
                        return nil
                    }
                } else if entry.handler.runInline != nil, entry.handler.limiter?.tryAcquire() ?? true {
                    defer { entry.handler.limiter?.release() }
                    let answer = try entry.handler.runInline!(request[argument])
                    finish(sequence: snapshot.sequence, answer, .response)
                    return nil
                }
                return Pending(
                    sequence: snapshot.sequence,
                    run: entry.handler.run,
                    request: request,
                    argument: argument
                )
            }
        } catch {
            finish(sequence: snapshot.sequence, RPCPeer.errorPayload(error, name: Self.name(in: request)), .error)
            return nil
        }
    }

    /// Whether `request[argument]` is the one encoding of `Empty` (`[1, 0]`).
    @inline(__always)
    private static func isEmptyEncoding(_ request: [UInt8], _ argument: Range<Int>) -> Bool {
        argument.count == 2 && request[argument.lowerBound] == 1 && request[argument.lowerBound + 1] == 0
    }

    /// Run `pending`'s handler in this task (jobs for this executor run on this thread meanwhile) and write its
    /// answer.
    private func serve(_ pending: Pending) async {
        jobs.withLock { $0.serving = true }
        let answer: [UInt8]
        var state = SwitchlessRing.State.response
        do {
            answer = try await pending.run(pending.request[pending.argument])
        } catch {
            answer = RPCPeer.errorPayload(error, name: Self.name(in: pending.request))
            state = .error
        }
        stopServing()
        finish(sequence: pending.sequence, answer, state)
    }

    /// Write the answer to request `sequence` into the slot (an error when it does not fit) and wake a waiting
    /// caller.
    private func finish(sequence: UInt64, _ answer: [UInt8], _ state: SwitchlessRing.State) {
        guard answer.count <= ring.capacity else {
            let error = RPCPeer.errorPayload(
                EnclaveError.limitExceeded(
                    "result of \(answer.count) bytes exceeds the \(ring.capacity)-byte switchless slot"
                )
            )
            ring.copyIn(slot, error)
            publish(sequence: sequence, length: error.count, .error)
            return
        }
        ring.copyIn(slot, answer)
        publish(sequence: sequence, length: answer.count, state)
    }

    /// Answer request `sequence` with the one encoding of `Empty`, written straight into the slot.
    private func publishEmpty(sequence: UInt64) {
        let data = ring.data(slot)
        data.storeBytes(of: 1, as: UInt8.self)
        data.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
        publish(sequence: sequence, length: 2, .response)
    }

    /// Publish the answer of `length` bytes already in the slot's data, and wake a waiting caller.
    @inline(__always)
    private func publish(sequence: UInt64, length: Int, _ state: SwitchlessRing.State) {
        ring.storeHeader(slot, length: length, sequence: sequence)
        // Publishes the answer (release: its data, length and sequence happen before the caller's acquire of the
        // state). Sequentially consistent because the load of the caller's waiting flag below must not be ordered
        // before it: a sleeping caller stores that flag, then its collector loads the state (Dekker's store-load on
        // both sides); with a weaker store both could miss and the caller would wait for the collector's timeout.
        ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.stateOffset), state.rawValue)
        if ek_atomic_load32(ring.slotWord(slot, SwitchlessRing.hostWaitingOffset)) != 0 {
            let doorbell = ring.doorbell(for: slot)
            _ = ek_atomic_add32(doorbell, 1)
            _ = ek_futex_wake(doorbell, Int32.max)
        }
    }

    /// The cache index of the handler of the call in `request` (a copy: the name's length and bytes, then the
    /// argument) and where its argument lies. A name is resolved once, then found by its bytes.
    private func lookUp(_ request: [UInt8], cache: HandlerCache) throws -> (Int, Range<Int>) {
        var position = 0
        let length = try Varint.readLength(
            request[...],
            at: &position,
            end: request.count,
            limit: min(256, request.count)
        )
        guard length <= request.count - position else {
            throw EnclaveError.malformedInput("call name is truncated or not UTF-8")
        }
        let name = position..<position + length
        let argument = name.upperBound..<request.count
        let known = request.withUnsafeBytes { bytes -> Int? in
            guard let base = bytes.baseAddress else { return nil }
            return cache.index(of: base + name.lowerBound, count: length)
        }
        if let known { return (known, argument) }
        guard let text = String(validating: request[name], as: UTF8.self) else {
            throw EnclaveError.malformedInput("call name is truncated or not UTF-8")
        }
        guard !text.hasPrefix(LaunchProtocol.reservedPrefix) else {
            throw EnclaveError.unknownCall("\(text) is not served switchless")
        }
        return (cache.add(name: Array(request[name]), handler: try resolve(text)), argument)
    }

    /// The call name in a request payload, for error messages (`nil` when it does not parse).
    private static func name(in payload: [UInt8]) -> String? {
        try? FramePayload.parseRequest(payload).name
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
