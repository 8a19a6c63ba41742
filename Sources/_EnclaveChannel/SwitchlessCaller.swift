internal import CEnclaveSystem
package import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// The host's side of switchless calls: posts requests into free slots of a ``SwitchlessRing`` and takes the
/// enclave's answers, without a system call when the enclave's worker is awake.
///
/// A caller claims a slot it owns (the host's own free list, never the ring's word), writes the request, and spins
/// on the slot for at most `spinNanoseconds` (yielding the CPU between looks after a short busy spin, so one vCPU
/// still makes progress). When the answer takes longer it suspends; a collector thread then sleeps on the ring's
/// doorbell (a futex the enclave rings for waiting callers, with a timeout so an enclave that never rings still
/// gets looked at) and resumes it. With no free slot, or a call too large for one, ``call(prefix:argument:)``
/// answers `nil` and the caller makes a regular call.
///
/// Whatever the enclave writes is checked (``SwitchlessRing/checkAnswer(_:sequence:capacity:)``) before it is used:
/// a slot whose answer is malformed fails its call with `protocolViolation` and is never used again. ``fail(with:)``
/// (the enclave's channel ended) fails every pending call at once.
package final class SwitchlessCaller: @unchecked Sendable {  // unchecked: mutable state behind `state`, ring atomic
    /// What the caller has done so far.
    package struct Counters: Sendable, Equatable {
        /// Calls answered through the ring.
        package var switchless = 0
        /// Of those, calls whose caller spun, found no answer, and slept until the enclave rang.
        package var spunThenSlept = 0
        /// Calls that took the regular channel: no free slot, or too large for a slot.
        package var fallback = 0
        /// Calls failed by a corrupt slot (a slot so found is retired).
        package var corrupt = 0
    }

    private struct Waiter {
        var sequence: UInt64
        var continuation: CheckedContinuation<[UInt8], any Error>
    }

    private struct State {
        var free: [Int]
        var nextSequence: UInt64 = 1
        var waiting: [Int: Waiter] = [:]
        var closed: EnclaveError?
        var counters = Counters()
        var collectorRunning = false
    }

    package let ring: SwitchlessRing
    private let spinNanoseconds: UInt64
    private let state: Mutex<State>
    private let closedFlag = Atomic<Bool>(false)
    private let collectorWake = NSCondition()
    /// Two spinners on one vCPU only make progress when one yields: busy-spin only with more than one CPU.
    private let busySpin = ProcessInfo.processInfo.activeProcessorCount > 1

    /// Serve calls through `ring`; callers spin up to `spinNanoseconds` for an answer before they suspend.
    package init(ring: SwitchlessRing, spinNanoseconds: UInt64) {
        self.ring = ring
        self.spinNanoseconds = spinNanoseconds
        self.state = Mutex(State(free: Array((0..<ring.slotCount).reversed())))
    }

    /// The counters so far.
    package var counters: Counters { state.withLock { $0.counters } }

    /// Call through the ring: `prefix` (the call name's prefix) then `argument` form the request. Returns the
    /// encoded result, or `nil` when the call must go over the regular channel (no free slot, or too large).
    package func call(prefix: [UInt8], argument: [UInt8]) async throws -> [UInt8]? {
        try await post(.request, prefix: prefix, argument: argument)
    }

    /// Echo `payload` through an enclave worker without decoding (the ring's transport floor); `nil` as for
    /// ``call(prefix:argument:)``.
    package func ping(_ payload: [UInt8]) async throws -> [UInt8]? {
        try await post(.ping, prefix: [], argument: payload)
    }

    private func post(
        _ kind: SwitchlessRing.State,
        prefix: [UInt8],
        argument: [UInt8]
    ) async throws -> [UInt8]? {
        guard prefix.count + argument.count <= ring.capacity else {
            state.withLock { $0.counters.fallback += 1 }
            return nil
        }
        let claimed = state.withLock { state -> Result<(slot: Int, sequence: UInt64)?, EnclaveError> in
            if let closed = state.closed { return .failure(closed) }
            guard let slot = state.free.popLast() else {
                state.counters.fallback += 1
                return .success(nil)
            }
            let sequence = state.nextSequence
            state.nextSequence &+= 1
            return .success((slot, sequence))
        }
        guard let claim = try claimed.get() else { return nil }
        let slot = claim.slot
        let sequence = claim.sequence
        // The slot is ours: the enclave must have left it free.
        let before = ring.snapshot(slot)
        guard before.state == SwitchlessRing.State.free.rawValue else {
            throw retire(
                slot,
                .protocolViolation("switchless slot \(slot): the enclave changed a free slot (state \(before.state))")
            )
        }
        ring.copyIn(slot, prefix, argument)
        ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.lengthOffset), UInt32(prefix.count + argument.count))
        ek_atomic_store64(ring.sequenceWord(slot), sequence)
        let stateWord = ring.slotWord(slot, SwitchlessRing.stateOffset)
        ring.publishCPU(SwitchlessRing.hostCPUOffset, slot: slot)
        ek_atomic_store32(stateWord, kind.rawValue)
        if ek_atomic_load32(ring.slotWord(slot, SwitchlessRing.workerSleepingOffset)) != 0 {
            _ = ek_futex_wake(stateWord, 1)
        }
        // Spin for the answer: busy while the worker runs on another CPU, yielding while it shares this one (or
        // this process may use only one CPU), so that it can run.
        let deadline = Self.now() &+ spinNanoseconds
        var spins = 0
        var yielding = !busySpin || ring.sharesCPU(with: SwitchlessRing.workerCPUOffset, slot: slot)
        while true {
            if let answer = try take(slot, sequence: sequence) { return try answer.get() }
            if closedFlag.load(ordering: .relaxed) { break }
            spins &+= 1
            if yielding {
                sched_yield()
            } else {
                ek_spin_pause()
            }
            if spins & 63 == 0 {
                if Self.now() > deadline { break }
                yielding = !busySpin || ring.sharesCPU(with: SwitchlessRing.workerCPUOffset, slot: slot)
            }
        }
        return try await sleep(slot: slot, sequence: sequence)
    }

    /// Suspend until the collector sees the answer in `slot`.
    private func sleep(slot: Int, sequence: UInt64) async throws -> [UInt8] {
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
            // After registering: the enclave, having written its answer, reads this word and rings the doorbell;
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
            release(slot)
            return .success(bytes)
        case .error(let length):
            let bytes = ring.copyOut(slot, count: length)
            release(slot)
            let (code, message) = FramePayload.parseError(bytes)
            return .failure(RPCPeer.peerError(code: code, message: message))
        }
    }

    /// Free an answered slot (its answer copied out) and count the call.
    private func release(_ slot: Int) {
        ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.hostWaitingOffset), 0)
        ek_atomic_store32(ring.slotWord(slot, SwitchlessRing.stateOffset), SwitchlessRing.State.free.rawValue)
        state.withLock { state in
            state.free.append(slot)
            state.counters.switchless += 1
        }
    }

    /// A slot the enclave corrupted: never used again; its call fails with `error`.
    private func retire(_ slot: Int, _ error: EnclaveError) -> EnclaveError {
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
        closedFlag.store(true, ordering: .relaxed)
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
            thread.name = "enclave-switchless"
            thread.stackSize = 256 << 10
            thread.start()
        } else {
            // The collector may be asleep on the doorbell, or idle on the condition: wake it either way.
            _ = ek_atomic_add32(ring.doorbell, 1)
            _ = ek_futex_wake(ring.doorbell, Int32.max)
            collectorWake.lock()
            collectorWake.signal()
            collectorWake.unlock()
        }
    }

    /// Resume suspended callers whose answers came; sleep on the doorbell while some wait, on a condition while
    /// none does. Ends when the caller fails.
    private func collect() {
        while true {
            let ring = self.ring
            let bell = ek_atomic_load32(ring.doorbell)
            let waiting = state.withLock { state -> [(Int, Waiter)]? in
                state.closed == nil ? state.waiting.map { ($0.key, $0.value) } : nil
            }
            guard let waiting else { return }
            if waiting.isEmpty {
                collectorWake.lock()
                let idle = state.withLock { $0.waiting.isEmpty && $0.closed == nil }
                if idle { _ = collectorWake.wait(until: Date(timeIntervalSinceNow: 1)) }
                collectorWake.unlock()
                continue
            }
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
            // The enclave rings for waiting callers; look again at least every 20 ms in case it does not.
            _ = ek_futex_wait(ring.doorbell, bell, 20_000_000)
        }
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
