internal import CEnclaveSystem
package import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// The calling side of switchless calls: posts requests into free slots of a ``SwitchlessRing`` and takes the other
/// side's answers, without a system call when the other side's server is awake. The host calls ECALLs through the
/// ring's ECALL slots with one; the enclave calls OCALLs through its OCALL slots with another.
///
/// A caller claims a slot it owns (its own free list, never the ring's word), writes the request, and spins
/// on the slot for at most `spinNanoseconds` (yielding the CPU between looks after a short busy spin, so one vCPU
/// still makes progress). When the answer takes longer it suspends; a collector thread then sleeps on the ring's
/// doorbell (a futex the other side rings for waiting callers, with a timeout so a side that never rings still
/// gets looked at) and resumes it. With no free slot, or a call too large for one, ``call(name:argument:)``
/// answers `nil` and the caller makes a regular call.
///
/// Whatever the other side writes is checked (``SwitchlessRing/checkAnswer(_:sequence:capacity:)``) before it is
/// used: a slot whose answer is malformed fails its call with `protocolViolation` and is never used again.
/// ``fail(with:)`` (the channel ended) fails every pending call at once.
package final class SwitchlessCaller: @unchecked Sendable {  // unchecked: mutable state behind `state`, ring atomic
    /// What the caller has done so far.
    package struct Counters: Codable, Sendable, Equatable {
        /// Calls answered through the ring.
        package var switchless = 0
        /// Of those, calls whose caller spun, found no answer, and slept until the enclave rang.
        package var spunThenSlept = 0
        /// Calls that took the regular channel: no free slot, or too large for a slot.
        package var fallback = 0
        /// Calls failed by a corrupt slot (a slot so found is retired).
        package var corrupt = 0

        package init() {}
    }

    private struct Waiter {
        var sequence: UInt64
        var continuation: CheckedContinuation<[UInt8], any Error>
    }

    /// What the caller keeps about one of its slots, in its own memory (never the ring's), one cache line each.
    /// `claim` is the slot's lock: 0 free, 1 claimed by a call, 2 retired (corrupt: never claimed again). The other
    /// fields belong to the call that holds the claim: the claim's compare-and-swap (acquire) and its release (a
    /// release store of 0) order them from one call to the next, whichever thread (caller or collector) releases.
    private struct SlotRecord {
        var claim: UInt32 = 0
        /// The state word the slot was left with: free, or the answer's state (a taken answer stays in the slot,
        /// so that freeing it costs no store into the line the other side watches).
        var left: UInt32 = SwitchlessRing.State.free.rawValue
        /// The last request's sequence (each slot counts its own).
        var sequence: UInt64 = 0
        /// Calls answered through this slot (written under the claim, read relaxed by `counters`).
        var answered: UInt64 = 0
    }

    private struct State {
        var waiting: [Int: Waiter] = [:]
        var closed: EnclaveError?
        var counters = Counters()
        var collectorRunning = false
    }

    package let ring: SwitchlessRing
    private let doorbell: UnsafeMutablePointer<UInt32>
    private let spinNanoseconds: UInt64
    private let collectorName: String?
    private let state: Mutex<State>
    /// This caller's slots, in order, and their records (64-byte stride: one line each, so that two callers on two
    /// slots never share one). A claim costs one compare-and-swap and its release one plain store, where a lock
    /// around a free list cost two of each per call.
    private let slots: Range<Int>
    private let records: UnsafeMutableRawPointer
    private static let recordStride = 64
    private let closedFlag = Atomic<Bool>(false)
    private let collectorWake = NSCondition()
    /// Two spinners on one vCPU only make progress when one yields: busy-spin only with more than one CPU.
    private let busySpin = ProcessInfo.processInfo.activeProcessorCount > 1

    /// Call through `slots` of `ring` (`nil`: its ECALL slots); callers spin up to `spinNanoseconds` for an answer
    /// before they suspend.
    package init(
        ring: SwitchlessRing,
        slots: Range<Int>? = nil,
        spinNanoseconds: UInt64,
        collectorName: String? = "enclave-switchless"
    ) {
        let slots = slots ?? ring.ecallSlots
        precondition(!slots.isEmpty && slots.lowerBound >= 0 && slots.upperBound <= ring.totalSlots)
        self.ring = ring
        self.doorbell = ring.doorbell(for: slots.lowerBound)
        self.spinNanoseconds = spinNanoseconds
        self.collectorName = collectorName
        self.state = Mutex(State())
        self.slots = slots
        self.records = UnsafeMutableRawPointer.allocate(
            byteCount: slots.count * Self.recordStride,
            alignment: Self.recordStride
        )
        for index in 0..<slots.count {
            (records + index * Self.recordStride).initializeMemory(
                as: SlotRecord.self,
                repeating: SlotRecord(),
                count: 1
            )
        }
    }

    deinit {
        records.deallocate()
    }

    /// The record of `slot` (one of `slots`).
    @inline(__always)
    private func record(_ slot: Int) -> UnsafeMutablePointer<SlotRecord> {
        (records + (slot - slots.lowerBound) * Self.recordStride).assumingMemoryBound(to: SlotRecord.self)
    }

    @inline(__always)
    private func claimWord(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(record(slot)).assumingMemoryBound(to: UInt32.self)
    }

    @inline(__always)
    private func answeredWord(_ slot: Int) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(record(slot)) + Self.answeredOffset).assumingMemoryBound(to: UInt64.self)
    }

    private static let answeredOffset = MemoryLayout<SlotRecord>.offset(of: \.answered)!

    /// The counters so far.
    package var counters: Counters {
        var counters = state.withLock { $0.counters }
        for slot in slots { counters.switchless += Int(ek_atomic_load64_relaxed(answeredWord(slot))) }
        return counters
    }

    /// Call through the ring: `prefix` (the call name's prefix) then `argument` form the request. Returns the
    /// encoded result, or `nil` when the call must go over the regular channel (no free slot, or too large).
    package nonisolated(nonsending) func call(prefix: [UInt8], argument: [UInt8]) async throws -> [UInt8]? {
        let posted = try prefix.withUnsafeBytes { prefix in
            try argument.withUnsafeBytes { argument in try post(.request, prefix, argument) }
        }
        guard let posted else { return nil }
        if let answer = try spin(posted) { return answer }
        return try await sleep(slot: posted.slot, sequence: posted.sequence)
    }

    /// Call `name` through the ring with the encoded `argument`: the request (the name's length and bytes, then the
    /// argument, as in a request frame) is written straight into the slot, with no buffer of its own. Returns the
    /// encoded result, or `nil` when the call must go over the regular channel (no free slot, or too large).
    package nonisolated(nonsending) func call(name: String, argument: [UInt8]) async throws -> [UInt8]? {
        switch try begin(name: name, argument: argument) {
        case .answered(let answer): return answer
        case .fallback: return nil
        case .pending(let slot, let sequence): return try await sleep(slot: slot, sequence: sequence)
        }
    }

    /// What ``begin(name:argument:)`` got.
    package enum Begun {
        /// The answer came while the caller spun.
        case answered([UInt8])
        /// The call must take the regular channel (no free slot, or too large).
        case fallback
        /// Posted, not answered within the spin: ``wait(slot:sequence:)`` suspends until it is.
        case pending(slot: Int, sequence: UInt64)
    }

    /// ``call(name:argument:)`` up to the end of its spin, without an async frame: a caller that gets `.pending`
    /// must then `wait` for that slot and sequence.
    package func begin(name: String, argument: [UInt8]) throws -> Begun {
        // A native string's bytes in place (no copy of the string); any other string through a copy of its bytes.
        let posted =
            try name.utf8.withContiguousStorageIfAvailable { utf8 in
                try post(name: UnsafeRawBufferPointer(utf8), argument: argument)
            } ?? Array(name.utf8).withUnsafeBytes { utf8 in try post(name: utf8, argument: argument) }
        guard let posted else { return .fallback }
        if let answer = try spin(posted) { return .answered(answer) }
        return .pending(slot: posted.slot, sequence: posted.sequence)
    }

    /// Post a request for the call named by the UTF-8 bytes `name` with the encoded `argument`.
    @inline(__always)
    private func post(name: UnsafeRawBufferPointer, argument: [UInt8]) throws -> Posted? {
        var head = (UInt64(0), UInt8(0))  // the name's length as a varint: at most 10 bytes
        let headCount = withUnsafeMutableBytes(of: &head) { Varint.write(UInt64(name.count), into: $0) }
        return try withUnsafeBytes(of: head) { head in
            try argument.withUnsafeBytes { argument in
                try post(.request, UnsafeRawBufferPointer(rebasing: head[..<headCount]), name, argument)
            }
        }
    }

    /// Suspend until the answer to a call ``begin(name:argument:)`` left pending comes.
    package nonisolated(nonsending) func wait(slot: Int, sequence: UInt64) async throws -> [UInt8] {
        try await sleep(slot: slot, sequence: sequence)
    }

    /// Echo `payload` through a server without decoding (the ring's transport floor); `nil` as for
    /// ``call(name:argument:)``.
    package nonisolated(nonsending) func ping(_ payload: [UInt8]) async throws -> [UInt8]? {
        switch try beginPing(payload) {
        case .answered(let answer): return answer
        case .fallback: return nil
        case .pending(let slot, let sequence): return try await sleep(slot: slot, sequence: sequence)
        }
    }

    /// ``ping(_:)`` up to the end of its spin, without an async frame (as ``begin(name:argument:)``).
    package func beginPing(_ payload: [UInt8]) throws -> Begun {
        guard let posted = try payload.withUnsafeBytes({ try post(.ping, $0) }) else { return .fallback }
        if let answer = try spin(posted) { return .answered(answer) }
        return .pending(slot: posted.slot, sequence: posted.sequence)
    }

    /// A posted request: its slot and sequence, and the CPU the caller ran on when it posted (advice).
    private struct Posted {
        var slot: Int
        var sequence: UInt64
        var cpu: Int32
    }

    /// Claim a free slot, write the request (`first`, `second` and `third` one after the other) into it and post it
    /// as `kind`; `nil` when the call must take the channel.
    private func post(
        _ kind: SwitchlessRing.State,
        _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        _ third: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) throws -> Posted? {
        let count = first.count + second.count + third.count
        guard count <= ring.capacity else {
            state.withLock { $0.counters.fallback += 1 }
            return nil
        }
        // Acquire: `fail` sets the flag after the error it stores under the lock.
        if closedFlag.load(ordering: .acquiring) {
            throw state.withLock { $0.closed } ?? .unavailable("the switchless call ring was closed")
        }
        // The first free slot, lowest first: a lone caller keeps using one slot, whose server stays awake.
        var claimed: Int?
        for slot in slots where ek_atomic_claim32(claimWord(slot), 0, 1) {
            claimed = slot
            break
        }
        guard let slot = claimed else {
            state.withLock { $0.counters.fallback += 1 }
            return nil
        }
        let mine = record(slot)
        mine.pointee.sequence &+= 1
        let sequence = mine.pointee.sequence
        // The slot is ours: the other side must have left it as we did (free, or holding the answer we took). Relaxed:
        // a check of a word we last read with acquire (the answer), nothing read depends on it.
        let before = ek_atomic_load32_relaxed(ring.slotWord(slot, SwitchlessRing.stateOffset))
        guard before == mine.pointee.left else {
            throw retire(
                slot,
                .protocolViolation(
                    "switchless slot \(slot): the \(otherSide) changed a free slot (state \(before))"
                )
            )
        }
        // Everything the stores below need is at hand before the first of them: the server polls this cache line,
        // and takes it back (shared) whenever the stores into it leave a gap, so that each later store waits for the
        // line again (a C model of the ring: the same work between the stores instead of before them cost 0.05–0.09
        // µs per call). Hence the CPU is read here, not between the header and the state.
        let cpu = ek_current_cpu()
        let stateWord = ring.slotWord(slot, SwitchlessRing.stateOffset)
        ring.copyIn(slot, at: 0, first)
        ring.copyIn(slot, at: first.count, second)
        ring.copyIn(slot, at: first.count + second.count, third)
        ring.storeHeader(slot, length: count, sequence: sequence)
        ring.publishCPU(SwitchlessRing.hostCPUOffset, slot: slot, cpu: cpu)
        // The state publishes the request (release: the data, length and sequence above happen before the server's
        // acquire of it). Sequentially consistent, not only release, because the load of the server's sleeping flag
        // below must not be ordered before it: the server stores that flag and then loads the state before it sleeps
        // (store-load on both sides, as in Dekker's algorithm); with a weaker store both could miss the other's write
        // and the server would sleep on a posted request.
        ek_atomic_store32(stateWord, kind.rawValue)
        if ek_atomic_load32(ring.slotWord(slot, SwitchlessRing.workerSleepingOffset)) != 0 {
            _ = ek_futex_wake(stateWord, 1)
        }
        return Posted(slot: slot, sequence: sequence, cpu: cpu)
    }

    /// Spin for the answer to `posted` on this thread (no suspension, no async frame when the answer comes within
    /// the spin; callers then sleep) for at most the spin time: busy while the server runs on another CPU,
    /// yielding while it shares this one (or this process may use only one CPU, or has servers of its own awake
    /// that may need this CPU), so that it can run. `nil`: no answer yet (or the ring closed).
    private func spin(_ posted: Posted) throws -> [UInt8]? {
        let slot = posted.slot
        let sequence = posted.sequence
        let stateWord = ring.slotWord(slot, SwitchlessRing.stateOffset)
        var yielding = mustYield(slot, cpu: posted.cpu)
        // Counted while spinning (not while asleep): this process's servers yield meanwhile. A caller that yields
        // (a server of this process may need its CPU) says so at once; a busy one only past its first looks.
        var counted = yielding
        if counted { SwitchlessServer.callerSpinning(1) }
        defer { if counted { SwitchlessServer.callerSpinning(-1) } }
        // The first looks cost no clock reading: most answers come within them.
        for _ in 0..<64 {
            if settled(stateWord), let answer = try take(slot, sequence: sequence) { return try answer.get() }
            if yielding { sched_yield() } else { ek_spin_pause() }
        }
        if closedFlag.load(ordering: .relaxed) || closedByServer() { return nil }
        let deadline = Self.now() &+ spinNanoseconds
        if !counted {
            counted = true
            SwitchlessServer.callerSpinning(1)
        }
        yielding = mustYield(slot)
        var spins = 0
        while true {
            if settled(stateWord), let answer = try take(slot, sequence: sequence) { return try answer.get() }
            if closedFlag.load(ordering: .relaxed) { return nil }
            spins &+= 1
            if yielding {
                sched_yield()
            } else {
                ek_spin_pause()
            }
            if spins & 63 == 0 {
                if Self.now() > deadline || closedByServer() { return nil }
                yielding = mustYield(slot)
            }
        }
    }

    /// Whether the slot's state (a relaxed look) is no longer a pending request: only then does `take` read and check
    /// the slot (with acquire). A look, not a decision: `take` decides on its own snapshot.
    @inline(__always)
    private func settled(_ stateWord: UnsafeMutablePointer<UInt32>) -> Bool {
        let state = ek_atomic_load32_relaxed(stateWord)
        return state != SwitchlessRing.State.request.rawValue && state != SwitchlessRing.State.working.rawValue
            && state != SwitchlessRing.State.ping.rawValue
    }

    /// Whether the other side closed the ring (the host does when the enclave goes away): every call then fails.
    private func closedByServer() -> Bool {
        guard ring.isClosed else { return false }
        fail(with: .unavailable("the switchless call ring was closed"))
        return true
    }

    /// Whether a caller waiting on `slot` yields the CPU between looks instead of busy-spinning.
    private func mustYield(_ slot: Int, cpu: Int32? = nil) -> Bool {
        !busySpin || ring.sharesCPU(with: SwitchlessRing.workerCPUOffset, slot: slot, cpu: cpu)
            || SwitchlessServer.othersAwake()
    }

    /// Who answers: the enclave for ECALL slots, the host for OCALL slots.
    private var otherSide: String { doorbell == ring.doorbell ? "enclave" : "host" }

    /// Suspend until the collector sees the answer in `slot`.
    private nonisolated(nonsending) func sleep(slot: Int, sequence: UInt64) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            let closed = state.withLock { state -> EnclaveError? in
                if let closed = state.closed { return closed }
                state.waiting[slot] = Waiter(sequence: sequence, continuation: continuation)
                state.counters.spunThenSlept += 1
                return nil
            }
            if let closed {
                continuation.resume(throwing: closed)
                return
            }
            // After registering: the server, having written its answer, reads this word and rings the doorbell;
            // the collector looks at the slot after this store in any case.
            ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.hostWaitingOffset), 1)
            startCollector()
        }
    }

    /// The answer in `slot`, if there is one: a result, the enclave's error, or a corrupt slot's error (the slot is
    /// then retired). A taken answer frees the slot.
    private func take(_ slot: Int, sequence: UInt64) throws(EnclaveError) -> Result<[UInt8], EnclaveError>? {
        let snapshot = ring.snapshot(slot)
        let answer: SwitchlessRing.Answer
        do throws(EnclaveError) {
            answer = try SwitchlessRing.checkAnswer(snapshot, sequence: sequence, capacity: ring.capacity)
        } catch {
            throw retire(slot, error)
        }
        switch answer {
        case .pending:
            return nil
        case .response(let length):
            let bytes = ring.copyOut(slot, count: length)
            release(slot, left: snapshot.state)
            return .success(bytes)
        case .error(let length):
            let bytes = ring.copyOut(slot, count: length)
            release(slot, left: snapshot.state)
            let (code, message) = FramePayload.parseError(bytes)
            return .failure(RPCPeer.peerError(code: code, message: message))
        }
    }

    /// Free an answered slot (its answer copied out) and count the call.
    private func release(_ slot: Int, left: UInt32) {
        // No store into the slot unless a sleeping caller marked it: the answer stays (the next request replaces
        // it), so the line moves once each way per call, as in a bare handoff.
        // Relaxed: a word only this caller sets and clears; the next request's state store publishes the clearing.
        let waiting = ring.slotWord(slot, SwitchlessRing.hostWaitingOffset)
        if ek_atomic_load32_relaxed(waiting) != 0 { ek_atomic_store32_relaxed(waiting, 0) }
        let mine = record(slot)
        mine.pointee.left = left
        // Relaxed, and a load and a store rather than an increment: only the claim's holder writes it.
        ek_atomic_store64_relaxed(answeredWord(slot), ek_atomic_load64_relaxed(answeredWord(slot)) &+ 1)
        // Release: the next claim (acquire) sees `left` and `sequence` as this call left them.
        ek_atomic_store32_release(claimWord(slot), 0)
    }

    /// A slot the enclave corrupted: never used again (its claim stays, as retired); its call fails with `error`.
    private func retire(_ slot: Int, _ error: EnclaveError) -> EnclaveError {
        ek_atomic_store32_release(claimWord(slot), 2)
        state.withLock { $0.counters.corrupt += 1 }
        return .protocolViolation("switchless slot \(slot): \(error.reason)")
    }

    /// Fail every pending and future call with `error`, close the ring (the enclave's workers stop). Idempotent.
    package func fail(with error: EnclaveError) {
        let waiting = state.withLock { state -> [Waiter] in
            guard state.closed == nil else { return [] }
            state.closed = error
            let waiting = Array(state.waiting.values)
            state.waiting.removeAll()
            return waiting
        }
        // Release: a caller that sees the flag (acquire) finds the error stored above.
        closedFlag.store(true, ordering: .releasing)
        ring.close()
        collectorWake.lock()
        collectorWake.broadcast()
        collectorWake.unlock()
        for waiter in waiting { waiter.continuation.resume(throwing: error) }
    }

    // MARK: The collector

    private func startCollector() {
        let start = state.withLock { state -> Bool in
            defer { state.collectorRunning = true }
            return !state.collectorRunning
        }
        if start {
            let thread = Thread { [self] in self.collect() }
            if let collectorName { thread.name = collectorName }
            thread.stackSize = 256 << 10
            thread.start()
        } else {
            // The collector may be asleep on the doorbell, or idle on the condition: wake it either way.
            _ = ek_atomic_add32(doorbell, 1)
            _ = ek_futex_wake(doorbell, Int32.max)
            collectorWake.lock()
            collectorWake.signal()
            collectorWake.unlock()
        }
    }

    /// Resume suspended callers whose answers came; sleep on the doorbell while some wait, on a condition while
    /// none does. Ends when the caller fails.
    private func collect() {
        while true {
            let bell = ek_atomic_load32(doorbell)
            let waiting = state.withLock { state -> [(Int, Waiter)]? in
                state.closed == nil ? state.waiting.map { ($0.key, $0.value) } : nil
            }
            guard let waiting, !closedByServer() else { return }
            if waiting.isEmpty {
                collectorWake.lock()
                let idle = state.withLock { $0.waiting.isEmpty && $0.closed == nil }
                if idle { _ = collectorWake.wait(until: Date(timeIntervalSinceNow: 1)) }
                collectorWake.unlock()
                continue
            }
            // The waiters' flags were stored (sequentially consistent) before they were listed under the lock; this
            // fence orders them before the loads of the slots' states below (the servers store the state, then load
            // the flag: store-load on both sides), so a server that missed a flag left an answer this pass sees.
            ek_atomic_fence()
            for (slot, waiter) in waiting {
                let outcome: Result<[UInt8], EnclaveError>
                do throws(EnclaveError) {
                    guard let answer = try take(slot, sequence: waiter.sequence) else { continue }
                    outcome = answer
                } catch {
                    outcome = .failure(error)
                }
                let mine = state.withLock { state -> Bool in
                    guard state.waiting[slot]?.sequence == waiter.sequence else { return false }
                    state.waiting[slot] = nil
                    return true
                }
                if mine { waiter.continuation.resume(with: outcome.mapError { $0 as any Error }) }
            }
            // The server rings for waiting callers; look again at least every 20 ms in case it does not.
            _ = ek_futex_wait(doorbell, bell, 20_000_000)
        }
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
