import EnclaveHost
import Foundation
import TestInterface
import Testing

@Suite("Calls across the boundary")
struct CallTests {
    static func load(
        maxThreads: UInt32 = 4,
        configure: (inout Enclave.Options) -> Void = { _ in }
    ) async throws
        -> Enclave
    {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1, maxThreads: maxThreads))
        var options = Fixtures.options(signed)
        options.ocalls.register(HostTransform.self) { $0.uppercased() }
        configure(&options)
        return try await Enclave.load(path: signed.image, options: options)
    }

    @Test func echoesBytesOfEverySize() async throws {
        let enclave = try await Self.load()
        for size in [0, 1, 4096, 1 << 20] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            #expect(try await enclave.call(Echo.self, payload) == payload)
        }
        await enclave.terminate()
    }

    @Test func ocallRunsInsideAnECall() async throws {
        let enclave = try await Self.load()
        #expect(try await enclave.call(AskHost.self, "quiet") == "QUIET")
        await enclave.terminate()
    }

    @Test func enclaveErrorsReachTheHostWithTheirMessage() async throws {
        let enclave = try await Self.load()
        let error = await #expect(throws: EnclaveError.self) {
            try await enclave.call(Fail.self, "the vault is locked")
        }
        #expect(error?.code == .callFailed)
        #expect(error?.reason.contains("the vault is locked") == true)
        // The enclave keeps serving.
        #expect(try await enclave.call(Echo.self, [1, 2, 3]) == [1, 2, 3])
        await enclave.terminate()
    }

    @Test func missingOCallHandlerFailsTheECallCleanly() async throws {
        let signed = try Fixtures.sign()
        let enclave = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(AskHost.self, "x") }
        #expect(error?.reason.contains("no OCALL named") == true)
        await enclave.terminate()
    }

    @Test func oversizedCallFailsAndTheEnclaveKeepsServing() async throws {
        let enclave = try await Self.load { $0.maxMessageSize = 64 << 10 }
        let error = await #expect(throws: EnclaveError.self) {
            try await enclave.call(Echo.self, [UInt8](repeating: 0, count: 128 << 10))
        }
        #expect(error?.code == .limitExceeded)
        #expect(try await enclave.call(Echo.self, [9]) == [9])
        await enclave.terminate()
    }

    @Test func malformedArgumentBytesFailAndTheEnclaveKeepsServing() async throws {
        let enclave = try await Self.load()
        for garbage: [UInt8] in [[], [0xFF], [1, 0x80], [1, 5, 1, 2], [0, 0]] {
            let error = await #expect(throws: EnclaveError.self) {
                try await enclave.rawCall(name: Echo.name, argument: garbage)
            }
            #expect(error?.code == .malformedInput)
        }
        let unknown = await #expect(throws: EnclaveError.self) {
            try await enclave.rawCall(name: "no.such.call", argument: [])
        }
        #expect(unknown?.code == .unknownCall)
        #expect(try await enclave.call(Echo.self, [4, 2]) == [4, 2])
        await enclave.terminate()
    }

    /// A synchronous handler of `Empty` to `Empty` is answered without the codec's generic layers: only the argument's
    /// one encoding takes that shortcut (and runs the handler); any other bytes are refused as the general path
    /// refuses them, without running it.
    @Test func anEmptyCallAcceptsOnlyTheOneEncodingOfEmpty() async throws {
        let enclave = try await Self.load()
        let canonical = try BinaryEncoder().encode(Empty())
        #expect(try await enclave.call(CountedNothing.self, Empty()) == Empty())
        #expect(try await enclave.rawCall(name: CountedNothing.name, argument: canonical) == canonical)
        #expect(try await enclave.call(CountedNothingRuns.self, Empty()) == 2)
        for garbage: [UInt8] in [[], [1], [0], [0, 0], [1, 1], [1, 0, 0], [2, 0], [1, 0x80, 0]] {
            let error = await #expect(throws: EnclaveError.self) {
                try await enclave.rawCall(name: CountedNothing.name, argument: garbage)
            }
            #expect(error?.code == .malformedInput, "\(garbage)")
            // The general path refuses the same bytes the same way.
            let general = await #expect(throws: EnclaveError.self) {
                try await enclave.rawCall(name: Identity.name, argument: garbage)
            }
            #expect(general?.code == error?.code, "\(garbage)")
        }
        #expect(try await enclave.call(CountedNothingRuns.self, Empty()) == 2)
        await enclave.terminate()
    }

    @Test func hostileOCallAnswersAreRejectedByTheEnclave() async throws {
        // The host answers the OCALL with bytes that do not decode as a String.
        let enclave = try await Self.load { options in
            options.ocalls.handlers[HostTransform.name] = { _ in [1, 200, 0xC3] }
        }
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(AskHost.self, "x") }
        #expect(error?.code == .malformedInput)
        #expect(try await enclave.call(Echo.self, [7]) == [7])
        await enclave.terminate()
    }

    /// A hostile enclave floods the host with 64 OCALLs of 1 MiB to a slow handler. The host keeps at most its
    /// queue bound (here 4 MiB) and refuses the rest with `limitExceeded` before creating tasks for them.
    @Test func enclaveFloodingTheHostIsRefusedBeyondTheQueueBound() async throws {
        let enclave = try await Self.load { options in
            options.maxQueuedOCalls = 16
            options.maxQueuedOCallBytes = 4 << 20
            // Served OCALLs are held 20 s, far longer than the flood takes even on a starved machine (with 500 ms,
            // a slowed flood let served ones finish and free their places, so fewer were refused).
            options.ocalls.register(HostTransform.self) { _ in
                try await Task.sleep(for: .seconds(20))
                return ""
            }
        }
        let refused = try await enclave.call(FloodHost.self, FloodRequest(count: 64, size: 1 << 20))
        #expect(refused >= 48, "only \(refused) of 64 refused")
        #expect(refused < 64, "none served")
        #expect(try await enclave.call(Echo.self, [3]) == [3])
        await enclave.terminate()
    }

    @Test func thousandConcurrentECallsComplete() async throws {
        let enclave = try await Self.load(maxThreads: 8)
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<1000 {
                group.addTask {
                    let payload = withUnsafeBytes(of: UInt32(index).littleEndian) { Array($0) }
                    return try await enclave.call(Echo.self, payload) == payload
                }
            }
            var ok = 0
            for try await result in group where result { ok += 1 }
            return ok
        }
        #expect(results == 1000)
        await enclave.terminate()
    }

    @Test func servesAtMostMaxThreadsECallsAtOnce() async throws {
        func peak(maxThreads: UInt32) async throws -> Int {
            let enclave = try await Self.load(maxThreads: maxThreads)
            defer { Task { await enclave.terminate() } }
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<12 { group.addTask { try await enclave.call(Sleep.self, 50) } }
                var highest = 0
                for try await value in group { highest = max(highest, value) }
                return highest
            }
        }
        #expect(try await peak(maxThreads: 2) <= 2)
        #expect(try await peak(maxThreads: 6) > 2)
    }

    /// Callers read their own answers for a bounded time; a call slower than that window hands reading to the
    /// channel thread and still completes, and fast calls after it read their answers again.
    @Test func callsSlowerThanTheCallerReadWindowComplete() async throws {
        let enclave = try await Self.load()
        for _ in 0..<3 {
            #expect(try await enclave.call(Sleep.self, 20) >= 1)
            #expect(try await enclave.call(Echo.self, [1, 2]) == [1, 2])
        }
        // Fast and slow calls at once: answers arrive while some caller reads and while the thread reads.
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                group.addTask {
                    if index % 8 == 0 { return try await enclave.call(Sleep.self, 5) >= 1 }
                    let payload = [UInt8(index)]
                    return try await enclave.call(Echo.self, payload) == payload
                }
            }
            var ok = 0
            for try await result in group where result { ok += 1 }
            return ok
        }
        #expect(results == 64)
        await enclave.terminate()
    }

    /// The enclave dies while its caller is reading the channel itself: the call fails promptly with
    /// `enclaveTerminated`, and so does the next one.
    @Test func crashWhileTheCallerReadsFailsPromptly() async throws {
        let enclave = try await Self.load()
        #expect(try await enclave.call(Echo.self, [5]) == [5])
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(Crash.self, "trap") }
        #expect(error?.code == .enclaveTerminated)
        #expect(clock.now - start < .seconds(30), "a hang guard: the crash is reported when the channel closes")
        let next = await #expect(throws: EnclaveError.self) { try await enclave.call(Echo.self, [1]) }
        #expect(next?.code == .enclaveTerminated)
        #expect(enclave.isTerminated)
    }

    /// Many calls in a row: the caller-reads path must not leak pending entries or lose an answer (each call gets
    /// its own). How fast they are is `enclave bench calls`' business: a wall-clock bound here failed only when the
    /// whole suite ran beside it on two cores (215 s for what takes 2 s alone).
    @Test func manySequentialCallsAreEachAnswered() async throws {
        let enclave = try await Self.load()
        for index in 0..<5_000 {
            let payload = withUnsafeBytes(of: UInt16(truncatingIfNeeded: index)) { Array($0) }
            #expect(try await enclave.call(Echo.self, payload) == payload)
        }
        #expect(try await enclave.ping([9, 9]) == [9, 9])
        await enclave.terminate()
    }
}
