import EnclaveHost
import Foundation
import TestInterface
import Testing
import _EnclaveChannel

#if canImport(Glibc)
import Glibc
#endif

@Suite("Switchless calls")
struct SwitchlessTests {
    static func load(
        slots: Int = 2,
        calls: Set<String>? = nil,
        configure: (inout Enclave.Options) -> Void = { _ in }
    ) async throws -> Enclave {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1, maxThreads: 8))
        var options = Fixtures.options(signed)
        options.ocalls.register(HostTransform.self) { $0.uppercased() }
        var switchless = Switchless()
        switchless.slots = slots
        switchless.calls = calls
        options.switchless = switchless
        configure(&options)
        return try await Enclave.load(path: signed.image, options: options)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Wait until `condition` holds, for at most `limit` seconds.
    static func eventually(within limit: Double, _ condition: () -> Bool) async throws -> Bool {
        let start = ContinuousClock.now
        while seconds(since: start) < limit {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    // MARK: Calls

    @Test func callsGoThroughTheRingAndAreCounted() async throws {
        let enclave = try await Self.load()
        for size in [0, 1, 4096, 60 << 10] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            #expect(try await enclave.call(Echo.self, payload) == payload)
        }
        let counters = try #require(enclave.switchlessCounters)
        #expect(counters.switchless == 4)
        #expect(counters.fallback == 0)
        #expect(counters.corrupt == 0)
        // Too large for a 64 KiB slot: the regular channel carries it, and the counter says so.
        let large = [UInt8](repeating: 9, count: 100 << 10)
        #expect(try await enclave.call(Echo.self, large) == large)
        #expect(enclave.switchlessCounters?.fallback == 1)
        #expect(enclave.switchlessCounters?.switchless == 4)
        await enclave.terminate()
    }

    @Test func anEmptyCallGoesThroughTheRingAndRunsItsHandler() async throws {
        let enclave = try await Self.load(calls: [CountedNothing.name])
        for _ in 0..<3 { #expect(try await enclave.call(CountedNothing.self, Empty()) == Empty()) }
        #expect(enclave.switchlessCounters?.switchless == 3)
        #expect(try await enclave.call(CountedNothingRuns.self, Empty()) == 3)
        await enclave.terminate()
    }

    @Test func echoGoesThroughAWorkerUndecoded() async throws {
        let enclave = try await Self.load()
        let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try await enclave.switchlessPing(payload) == payload)
        #expect(try await enclave.switchlessPing() == [])
        #expect(enclave.switchlessCounters?.switchless == 2)
        await enclave.terminate()
    }

    @Test func onlyTheNamedCallsGoSwitchless() async throws {
        let enclave = try await Self.load(calls: [Echo.name])
        #expect(try await enclave.call(Echo.self, [1, 2]) == [1, 2])
        _ = try await enclave.call(Identity.self, Empty())
        #expect(enclave.switchlessCounters?.switchless == 1)
        #expect(enclave.switchlessCounters?.fallback == 0)
        await enclave.terminate()
    }

    @Test func errorsAndOCallsWorkSwitchless() async throws {
        let enclave = try await Self.load()
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(Fail.self, "locked vault") }
        #expect(error?.code == .callFailed)
        #expect(error?.reason.contains("locked vault") == true)
        // The handler suspends on an OCALL; its answer resumes it on the slot's worker.
        #expect(try await enclave.call(AskHost.self, "quiet") == "QUIET")
        // A slow call: the caller spins, then sleeps until the enclave rings.
        _ = try await enclave.call(Sleep.self, 20)
        let counters = try #require(enclave.switchlessCounters)
        #expect(counters.switchless == 3)
        #expect(counters.spunThenSlept >= 1)
        await enclave.terminate()
    }

    /// One call holds the only slot (posted, its caller asleep: counted before the others start, so no bet on how
    /// the machine schedules eight tasks); the calls made meanwhile find no free slot, fall back to the channel,
    /// and all are answered.
    @Test func moreCallsThanSlotsFallBackAndAllAnswer() async throws {
        let enclave = try await Self.load(slots: 1)
        let holder = Task { try await enclave.call(Sleep.self, 10_000) }
        let giveUp = ContinuousClock.now + .seconds(120)  // a hang guard only
        while (enclave.switchlessCounters?.spunThenSlept ?? 0) < 1, ContinuousClock.now < giveUp {
            try await Task.sleep(for: .milliseconds(5))
        }
        try #require((enclave.switchlessCounters?.spunThenSlept ?? 0) >= 1, "the holding call never went to sleep")
        let answers = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<7 {
                group.addTask {
                    _ = try await enclave.call(Sleep.self, 30)
                    return index
                }
            }
            var answered = 0
            for try await _ in group { answered += 1 }
            return answered
        }
        _ = try await holder.value
        #expect(answers == 7)
        let counters = try #require(enclave.switchlessCounters)
        #expect(counters.switchless + counters.fallback == 8)
        #expect(counters.fallback >= 1)
        await enclave.terminate()
    }

    @Test func startingTwiceOrWithoutARingIsRefused() async throws {
        let enclave = try await Self.load()
        let again = await #expect(throws: EnclaveError.self) {
            try await enclave.rawCall(name: SwitchlessRing.startCall, argument: [])
        }
        #expect(again?.code == .invalidConfiguration)
        await enclave.terminate()

        let signed = try Fixtures.sign()
        let plain = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        let noRing = await #expect(throws: EnclaveError.self) {
            try await plain.rawCall(name: SwitchlessRing.startCall, argument: [])
        }
        #expect(noRing?.code == .invalidConfiguration)
        #expect(try await plain.call(Echo.self, [5]) == [5])
        await plain.terminate()
    }

    // MARK: Faults

    @Test func enclaveDeathFailsAPendingSwitchlessCallPromptly() async throws {
        let enclave = try await Self.load()
        let start = ContinuousClock.now
        let pending = Task { try await enclave.call(Sleep.self, 120_000) }
        try await Task.sleep(for: .milliseconds(300))
        kill(enclave.processID, SIGKILL)
        let error = await #expect(throws: EnclaveError.self) { try await pending.value }
        #expect(error?.code == .enclaveTerminated)
        // Well before the handler's 120 s (60 s of slack: the whole suite runs in parallel on two cores).
        #expect(Self.seconds(since: start) < 60)
        // Later calls fail at once, switchless or not.
        let after = await #expect(throws: EnclaveError.self) { try await enclave.call(Echo.self, [1]) }
        #expect(after?.code == .enclaveTerminated)
    }

    @Test func aCrashInASwitchlessCallFailsIt() async throws {
        let enclave = try await Self.load()
        let start = ContinuousClock.now
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(Crash.self, "trap") }
        #expect(error?.code == .enclaveTerminated)
        #expect(Self.seconds(since: start) < 60)
    }

    @Test func enclaveCorruptingAFreeSlotFailsOneCallNotTheHost() async throws {
        let enclave = try await Self.load(slots: 1, calls: [Echo.name])
        // The scribble call goes over the channel; it sets the free slot's state to garbage.
        _ = try await enclave.call(ScribbleSwitchlessRing.self, ScribbleRequest(slot: 0, word: 0, value: 77))
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(Echo.self, [1]) }
        #expect(error?.code == .protocolViolation)
        #expect(error?.reason.contains("changed a free slot") == true)
        // The slot is retired: calls go over the channel and still answer.
        #expect(try await enclave.call(Echo.self, [2]) == [2])
        let counters = try #require(enclave.switchlessCounters)
        #expect(counters.corrupt == 1)
        #expect(counters.fallback == 1)
        #expect(!enclave.isTerminated)
        await enclave.terminate()
    }

    @Test func enclaveAnsweringWithALengthBeyondTheSlotFailsTheCall() async throws {
        let enclave = try await Self.load(slots: 1, calls: [Sleep.name])
        // The handler runs 30 s: an error well before that comes from the corrupt slot, not from its real answer.
        let pending = Task { try await enclave.call(Sleep.self, 120_000) }
        try await Task.sleep(for: .milliseconds(200))
        // While the call runs, the enclave claims an answer far larger than the slot.
        _ = try await enclave.call(ScribbleSwitchlessRing.self, ScribbleRequest(slot: 0, word: 3, value: 0xFFFF_FF00))
        _ = try await enclave.call(ScribbleSwitchlessRing.self, ScribbleRequest(slot: 0, word: 0, value: 3))
        let start = ContinuousClock.now
        let error = await #expect(throws: EnclaveError.self) { try await pending.value }
        #expect(error?.code == .protocolViolation)
        #expect(error?.reason.contains("exceeds") == true)
        // Prompt, not the handler's own end (120 s); 60 s of slack: the whole suite runs beside it on two cores (9.7 s
        // seen beside six builds).
        #expect(Self.seconds(since: start) < 60)
        #expect(enclave.switchlessCounters?.corrupt == 1)
        #expect(try await enclave.call(Sleep.self, 1) >= 1)
        await enclave.terminate()
    }

    @Test func enclaveAnsweringAnUnknownStateFailsTheCall() async throws {
        let enclave = try await Self.load(slots: 1, calls: [Sleep.name])
        let pending = Task { try await enclave.call(Sleep.self, 120_000) }
        try await Task.sleep(for: .milliseconds(200))
        _ = try await enclave.call(ScribbleSwitchlessRing.self, ScribbleRequest(slot: 0, word: 0, value: 0xDEAD))
        let start = ContinuousClock.now
        let error = await #expect(throws: EnclaveError.self) { try await pending.value }
        #expect(Self.seconds(since: start) < 60)
        #expect(error?.code == .protocolViolation)
        #expect(error?.reason.contains("unknown state") == true)
        await enclave.terminate()
    }

    @Test func hostCorruptingTheRingGetsAnErrorNotACrash() async throws {
        let enclave = try await Self.load(slots: 2, calls: [Echo.name])
        // A request whose length is far beyond the slot: the enclave answers malformedInput in the slot.
        enclave.scribbleSwitchlessSlot(1, word: 3, value: 0xFFFF_FFF0)
        enclave.scribbleSwitchlessSlot(1, word: 0, value: SwitchlessRing.State.request.rawValue)
        let answered = try await Self.eventually(within: 30) {
            enclave.switchlessSlot(1)?.state == SwitchlessRing.State.error.rawValue
        }
        #expect(answered)
        let slot = try #require(enclave.switchlessSlot(1))
        #expect(FramePayload.parseError(slot.data).code == "malformedInput")
        // A request with no valid call name (zero-length data read as an empty name): an error, not a crash.
        enclave.scribbleSwitchlessSlot(1, word: 3, value: 0)
        enclave.scribbleSwitchlessSlot(1, word: 0, value: SwitchlessRing.State.request.rawValue)
        #expect(
            try await Self.eventually(within: 30) {
                enclave.switchlessSlot(1)?.state == SwitchlessRing.State.error.rawValue
            }
        )
        #expect(FramePayload.parseError(try #require(enclave.switchlessSlot(1)).data).code == "malformedInput")
        // States the enclave does not serve are left alone.
        enclave.scribbleSwitchlessSlot(1, word: 0, value: 0xBAD)
        try await Task.sleep(for: .milliseconds(100))
        #expect(enclave.switchlessSlot(1)?.state == 0xBAD)
        #expect(!enclave.isTerminated)
        // The other slot still serves.
        #expect(try await enclave.call(Echo.self, [3, 4]) == [3, 4])
        #expect(enclave.switchlessCounters?.switchless == 1)
        await enclave.terminate()
    }

    // MARK: Switchless OCALLs

    /// An enclave with two ECALL slots and one OCALL slot for ``HostTransform``; the host's handler stalls for 120 s
    /// on "stall" and never answers "never".
    static func loadWithOCalls() async throws -> Enclave {
        try await load(slots: 2) { options in
            options.switchless?.ocallSlots = 1
            options.switchless?.ocalls = [HostTransform.name]
            options.ocalls.register(HostTransform.self) { text in
                if text == "stall" { try await Task.sleep(for: .seconds(120)) }
                if text == "never" { try await Task.sleep(for: .seconds(3600)) }
                return text.uppercased()
            }
        }
    }

    @Test func ocallsGoThroughTheRingAndAreCounted() async throws {
        let enclave = try await Self.loadWithOCalls()
        for text in ["quiet", "", String(repeating: "a", count: 5000)] {
            #expect(try await enclave.call(AskHost.self, text) == text.uppercased())
        }
        let counters = try #require(try await enclave.switchlessOCallCounters())
        #expect(counters.switchless == 3)
        #expect(counters.fallback == 0)
        #expect(counters.corrupt == 0)
        // Too large for a 64 KiB slot: the channel carries it, and the enclave counts the fallback.
        let large = String(repeating: "b", count: 100 << 10)
        #expect(try await enclave.call(AskHost.self, large) == large.uppercased())
        #expect(try await enclave.switchlessOCallCounters()?.fallback == 1)
        // ECALLs still go through their own slots.
        #expect(enclave.switchlessCounters?.corrupt == 0)
        await enclave.terminate()
    }

    @Test func ocallsStayOnTheChannelUnlessOptedIn() async throws {
        let enclave = try await Self.load()
        #expect(try await enclave.call(AskHost.self, "plain") == "PLAIN")
        let counters = try #require(try await enclave.switchlessOCallCounters())
        #expect(counters.switchless == 0)
        #expect(counters.fallback == 0)
        #expect(counters.corrupt == 0)
        await enclave.terminate()
    }

    @Test func hostCorruptingAPendingOCallAnswerFailsItInTheEnclave() async throws {
        let enclave = try await Self.loadWithOCalls()
        let slot = 2  // the OCALL slot follows the two ECALL slots
        // The host's handler stalls; meanwhile the host claims an answer far larger than the slot.
        let pending = Task { try await enclave.call(AskHost.self, "stall") }
        #expect(try await Self.eventually(within: 30) { enclave.switchlessSlot(slot)?.state == 1 })
        enclave.scribbleSwitchlessSlot(slot, word: 3, value: 0xFFFF_FF00)
        enclave.scribbleSwitchlessSlot(slot, word: 0, value: SwitchlessRing.State.response.rawValue)
        let start = ContinuousClock.now
        let error = await #expect(throws: EnclaveError.self) { try await pending.value }
        #expect(error?.reason.contains("exceeds") == true, "\(error?.reason ?? "")")
        #expect(error?.reason.contains("switchless slot \(slot)") == true)
        // Prompt, not the handler's 120 s (60 s of slack: the whole suite runs beside it on two cores).
        #expect(Self.seconds(since: start) < 60)
        #expect(!enclave.isTerminated)
        #expect(try await enclave.switchlessOCallCounters()?.corrupt == 1)
        // The slot is retired: OCALLs take the channel and still answer.
        #expect(try await enclave.call(AskHost.self, "after") == "AFTER")
        #expect(try await enclave.switchlessOCallCounters()?.fallback == 1)
        await enclave.terminate()
    }

    @Test func hostAnsweringWithAnUnknownStateOrAnotherSequenceFailsTheOCall() async throws {
        for (word, value, needle) in [(0, UInt32(0xDEAD), "unknown state"), (4, UInt32(0x7777), "expected")] {
            let enclave = try await Self.loadWithOCalls()
            let slot = 2
            let pending = Task { try await enclave.call(AskHost.self, "stall") }
            #expect(try await Self.eventually(within: 30) { enclave.switchlessSlot(slot)?.state == 1 })
            enclave.scribbleSwitchlessSlot(slot, word: 3, value: 2)
            enclave.scribbleSwitchlessSlot(slot, word: word, value: value)
            if word != 0 {
                enclave.scribbleSwitchlessSlot(slot, word: 0, value: SwitchlessRing.State.response.rawValue)
            }
            let error = await #expect(throws: EnclaveError.self) { try await pending.value }
            #expect(error?.reason.contains(needle) == true, "\(error?.reason ?? "")")
            #expect(!enclave.isTerminated)
            await enclave.terminate()
        }
    }

    @Test func aHostThatNeverAnswersAnOCallCostsTheEnclaveNoCPUAndTerminationEndsIt() async throws {
        let enclave = try await Self.loadWithOCalls()
        let pending = Task { try await enclave.call(AskHost.self, "never") }
        #expect(try await Self.eventually(within: 30) { enclave.switchlessSlot(2)?.state == 1 })
        // The enclave's caller spins briefly, then sleeps: the waiting enclave uses (almost) no CPU.
        try await Task.sleep(for: .milliseconds(300))
        let before = try #require(CallFloor.cpuSeconds(process: enclave.processID))
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(1))
        let after = try #require(CallFloor.cpuSeconds(process: enclave.processID))
        let share = (after - before) / Self.seconds(since: start)
        #expect(share < 0.03, "an enclave waiting for an OCALL used \(share * 100)% of a CPU")
        #expect(try await enclave.switchlessOCallCounters()?.spunThenSlept == 1)
        // Stopping the enclave fails the pending ECALL promptly; nothing hangs.
        let stop = ContinuousClock.now
        await enclave.terminate()
        let error = await #expect(throws: EnclaveError.self) { try await pending.value }
        #expect(error?.code == .enclaveTerminated)
        #expect(Self.seconds(since: stop) < 60)
    }

    @Test func reservedCallsAreNotServedOnTheOCallRing() async throws {
        let enclave = try await Self.loadWithOCalls()
        // The host writes a request for the loader's own call into the OCALL slot, as the enclave would: refused.
        _ = try await enclave.call(AskHost.self, "warm")
        let slot = 2
        var request = [UInt8]()
        Varint.append(UInt64(LaunchProtocol.readyCall.utf8.count), to: &request)
        request += Array(LaunchProtocol.readyCall.utf8)
        request += try BinaryEncoder().encode(Empty())
        // The warm-up's answer, taken by the enclave's caller, stays in the slot until its next request.
        #expect(
            try await Self.eventually(within: 30) {
                enclave.switchlessSlot(slot)?.state == SwitchlessRing.State.response.rawValue
            }
        )
        enclave.writeSwitchlessRequest(slot, request)
        #expect(
            try await Self.eventually(within: 30) {
                enclave.switchlessSlot(slot)?.state == SwitchlessRing.State.error.rawValue
            }
        )
        #expect(FramePayload.parseError(try #require(enclave.switchlessSlot(slot)).data).code == "unknownCall")
        await enclave.terminate()
    }

    // MARK: Idle

    @Test func idleSwitchlessWorkersUseNoCPU() async throws {
        let enclave = try await Self.load(slots: 4)
        for _ in 0..<200 { _ = try await enclave.call(Echo.self, [1]) }
        try await Task.sleep(for: .milliseconds(300))
        let before = try #require(CallFloor.cpuSeconds(process: enclave.processID))
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(1))
        let after = try #require(CallFloor.cpuSeconds(process: enclave.processID))
        let share = (after - before) / Self.seconds(since: start)
        #expect(share < 0.03, "idle enclave used \(share * 100)% of a CPU")
        await enclave.terminate()
    }

    // MARK: The host's slot parser

    @Test func answerParserRefusesWhatTheEnclaveMustNotWrite() throws {
        typealias Snapshot = SwitchlessRing.Snapshot
        let capacity = 8192
        func check(_ state: UInt32, _ length: UInt32, _ sequence: UInt64) throws(EnclaveError) -> SwitchlessRing.Answer
        {
            try SwitchlessRing.checkAnswer(
                Snapshot(state: state, length: length, sequence: sequence),
                sequence: 7,
                capacity: capacity
            )
        }
        #expect(try check(1, 0, 0) == .pending)
        #expect(try check(2, 99_999, 3) == .pending)
        #expect(try check(5, 0, 0) == .pending)
        #expect(try check(3, 8192, 7) == .response(8192))
        #expect(try check(4, 10, 7) == .error(10))
        for (state, length, sequence, needle) in [
            (UInt32(3), UInt32(8193), UInt64(7), "exceeds"),
            (4, .max, 7, "exceeds"),
            (3, 4, 6, "expected 7"),
            (0, 0, 7, "freed"),
            (6, 0, 7, "unknown state"),
            (.max, 0, 7, "unknown state"),
        ] {
            let error = #expect(throws: EnclaveError.self) { try check(state, length, sequence) }
            #expect(error?.code == .protocolViolation)
            #expect(error?.reason.contains(needle) == true, "\(error?.reason ?? "")")
        }
    }

    @Test func requestParserRefusesOversizedRequests() throws {
        typealias Snapshot = SwitchlessRing.Snapshot
        #expect(
            try SwitchlessRing.checkRequest(Snapshot(state: 1, length: 100, sequence: 1), capacity: 8192).get() == 100
        )
        if case .failure(let error) = SwitchlessRing.checkRequest(
            Snapshot(state: 1, length: 8193, sequence: 1),
            capacity: 8192
        ) {
            #expect(error.code == .malformedInput)
        } else {
            Issue.record("an oversized request was accepted")
        }
        if case .failure(let error) = SwitchlessRing.checkRequest(
            Snapshot(state: 3, length: 1, sequence: 1),
            capacity: 8192
        ) {
            #expect(error.code == .protocolViolation)
        } else {
            Issue.record("a response was taken for a request")
        }
    }

    @Test func ringGeometryIsBounded() {
        #expect(SwitchlessRing.size(slots: 0, capacity: 8192) == nil)
        #expect(SwitchlessRing.size(slots: 65, capacity: 8192) == nil)
        #expect(SwitchlessRing.size(slots: 1, capacity: 4096) == nil)
        #expect(SwitchlessRing.size(slots: 1, capacity: 8200) == nil)
        #expect(SwitchlessRing.size(slots: 64, capacity: 16 << 20) == nil)
        #expect(SwitchlessRing.size(slots: 2, capacity: 8192) == 64 + 2 * (64 + 8192))
        let error = #expect(throws: EnclaveError.self) {
            try SwitchlessRing.create(slots: 0, capacity: 8192, workerSpinMicroseconds: 0)
        }
        #expect(error?.code == .invalidConfiguration)
    }
}
