import EnclaveCore
import Foundation
import Synchronization
import Testing
import _EnclaveChannel

/// A switchless server and caller in this process, over a ring of its own: which path serves a call (inline on the
/// server's thread, or in its serving task), the limit on concurrent calls, and what the server answers for requests
/// it cannot serve.
@Suite("Switchless inline serving")
struct SwitchlessInlineTests {
    /// What served each call: "inline" or "task".
    final class Log: Sendable {
        let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// A ring with one ECALL slot served by a server in this process, and a caller over it.
    static func serve(resolve: @escaping SwitchlessServer.Resolve) throws -> SwitchlessCaller {
        let (ring, fd) = try SwitchlessRing.create(slots: 1, capacity: 8192, workerSpinMicroseconds: 100)
        close(fd)
        SwitchlessServer.start(
            ring: ring,
            slot: 0,
            resolve: resolve,
            fallback: { job in globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
        )
        return SwitchlessCaller(ring: ring, spinNanoseconds: 50_000, collectorName: nil)
    }

    static func handlers(log: Log, limiter: AsyncLimiter? = nil) -> SwitchlessServer.Resolve {
        { name in
            switch name {
            case "inline":
                return SwitchlessServer.Handler(
                    { argument in
                        try await (limiter ?? AsyncLimiter(limit: 1)).run {
                            log.add("task")
                            return Array(argument)
                        }
                    },
                    inline: { argument in
                        log.add("inline")
                        return Array(argument)
                    },
                    limiter: limiter
                )
            case "async":
                return SwitchlessServer.Handler { argument in
                    try await Task.sleep(for: .milliseconds(1))
                    log.add("task")
                    return Array(argument.reversed())
                }
            case "throws":
                return SwitchlessServer.Handler(
                    { _ in throw EnclaveError.callFailed("not inline") },
                    inline: { _ in throw EnclaveError.malformedInput("refused inline") }
                )
            default:
                throw EnclaveError.unknownCall("no call named \(name)")
            }
        }
    }

    @Test func synchronousHandlersRunInlineAndOthersInTheServingTask() async throws {
        let log = Log()
        let caller = try Self.serve(resolve: Self.handlers(log: log))
        defer { caller.fail(with: .unavailable("test over")) }
        // Sizes going down and up again: the server's request copy is reused, never stale.
        for size in [5000, 3, 0, 100, 8000 - 10] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ size) }
            #expect(try await caller.call(name: "inline", argument: payload) == payload)
        }
        #expect(try await caller.call(name: "async", argument: [1, 2, 3]) == [3, 2, 1])
        #expect(try await caller.call(name: "inline", argument: [7]) == [7])
        #expect(log.all == ["inline", "inline", "inline", "inline", "inline", "task", "inline"])
        #expect(caller.counters.switchless == 7)
        #expect(caller.counters.corrupt == 0)
    }

    @Test func anInlineCallWithoutAFreePermitWaitsForOneInTheTask() async throws {
        let log = Log()
        let limiter = AsyncLimiter(limit: 1)
        let caller = try Self.serve(resolve: Self.handlers(log: log, limiter: limiter))
        defer { caller.fail(with: .unavailable("test over")) }
        #expect(try await caller.call(name: "inline", argument: [1]) == [1])
        // Every permit is taken (a long call elsewhere): the inline handler must not run past the limit.
        await limiter.acquire()
        let answered = Atomic<Bool>(false)
        let call = Task {
            let answer = try await caller.call(name: "inline", argument: [2])
            answered.store(true, ordering: .sequentiallyConsistent)
            return answer
        }
        try await Task.sleep(for: .milliseconds(300))
        let early = answered.load(ordering: .sequentiallyConsistent)
        #expect(!early)
        #expect(log.all == ["inline"])
        limiter.release()
        #expect(try await call.value == [2])
        #expect(log.all == ["inline", "task"])
        // The permit came back: inline again.
        #expect(try await caller.call(name: "inline", argument: [3]) == [3])
        #expect(log.all == ["inline", "task", "inline"])
        #expect(limiter.tryAcquire())
    }

    @Test func errorsAndUnservableRequestsAreAnsweredInline() async throws {
        let log = Log()
        let caller = try Self.serve(resolve: Self.handlers(log: log))
        defer { caller.fail(with: .unavailable("test over")) }
        let thrown = await #expect(throws: EnclaveError.self) { try await caller.call(name: "throws", argument: []) }
        #expect(thrown?.code == .malformedInput)
        #expect(thrown?.reason.contains("refused inline") == true)
        let unknown = await #expect(throws: EnclaveError.self) { try await caller.call(name: "nothing", argument: []) }
        #expect(unknown?.code == .unknownCall)
        let reserved = await #expect(throws: EnclaveError.self) {
            try await caller.call(name: LaunchProtocol.reservedPrefix + "x", argument: [])
        }
        #expect(reserved?.code == .unknownCall)
        // A name length beyond the request, and a name that is not UTF-8.
        let truncated = await #expect(throws: EnclaveError.self) {
            try await caller.call(prefix: [40, 0x61], argument: [])
        }
        #expect(truncated?.code == .malformedInput)
        let notText = await #expect(throws: EnclaveError.self) {
            try await caller.call(prefix: [2, 0xFF, 0xFE], argument: [])
        }
        #expect(notText?.code == .malformedInput)
        // The slot still serves.
        #expect(try await caller.call(name: "inline", argument: [5]) == [5])
        #expect(caller.counters.corrupt == 0)
        #expect(log.all == ["inline"])
    }

    /// A call that takes and returns `Empty` is answered without the codec when its argument is `[1, 0]`; any other
    /// bytes take the general handler (which refuses them), and what the handler throws is answered as an error.
    @Test func emptyCallsTakeTheEmptyHandlerOnlyForTheOneEncodingOfEmpty() async throws {
        let log = Log()
        let fails = Atomic<Bool>(false)
        let caller = try Self.serve { name in
            guard name == "empty" else { throw EnclaveError.unknownCall(name) }
            return SwitchlessServer.Handler(
                { _ in
                    log.add("task")
                    return [9]
                },
                inline: { argument in
                    log.add("general")
                    throw EnclaveError.malformedInput("not empty: \(Array(argument))")
                },
                empty: {
                    log.add("empty")
                    if fails.load(ordering: .relaxed) { throw EnclaveError.callFailed("empty handler failed") }
                },
                limiter: AsyncLimiter(limit: 1)
            )
        }
        defer { caller.fail(with: .unavailable("test over")) }
        #expect(try await caller.call(name: "empty", argument: [1, 0]) == [1, 0])
        for other: [UInt8] in [[], [1], [0, 0], [1, 1], [1, 0, 0], [2, 0]] {
            let refused = await #expect(throws: EnclaveError.self) {
                try await caller.call(name: "empty", argument: other)
            }
            #expect(refused?.code == .malformedInput)
        }
        fails.store(true, ordering: .relaxed)
        let failed = await #expect(throws: EnclaveError.self) {
            try await caller.call(name: "empty", argument: [1, 0])
        }
        #expect(failed?.reason.contains("empty handler failed") == true)
        fails.store(false, ordering: .relaxed)
        #expect(try await caller.call(name: "empty", argument: [1, 0]) == [1, 0])
        #expect(log.all == ["empty"] + Array(repeating: "general", count: 6) + ["empty", "empty"])
        #expect(caller.counters.corrupt == 0)
    }

    /// More call names than the server remembers: each call still runs its own handler (a forgotten name is resolved
    /// again), and a name called again and again is resolved once.
    @Test func namesBeyondTheCacheStillReachTheirOwnHandlers() async throws {
        let resolved = Mutex<[String: Int]>([:])
        let caller = try Self.serve { name in
            resolved.withLock { $0[name, default: 0] += 1 }
            let tag = Array(name.utf8)
            return SwitchlessServer.Handler({ _ in tag }, inline: { _ in tag })
        }
        defer { caller.fail(with: .unavailable("test over")) }
        let names = (0..<40).map { "call-\($0)" }
        for round in 0..<3 {
            for name in names {
                #expect(try await caller.call(name: name, argument: [UInt8(round)]) == Array(name.utf8))
            }
        }
        for _ in 0..<50 { #expect(try await caller.call(name: "steady", argument: []) == Array("steady".utf8)) }
        let counts = resolved.withLock { $0 }
        #expect(counts["steady"] == 1)
        #expect(names.allSatisfy { (counts[$0] ?? 0) >= 1 && (counts[$0] ?? 0) <= 3 })
        #expect(caller.counters.corrupt == 0)
    }

    @Test func twoByteAnswersAreCopiedExactly() throws {
        let (ring, fd) = try SwitchlessRing.create(slots: 1, capacity: 8192, workerSpinMicroseconds: 0)
        close(fd)
        defer { ring.close() }
        for pair: [UInt8] in [[1, 0], [1, 1], [0, 0], [0, 1], [0xFF, 0]] {
            ring.copyIn(0, pair)
            #expect(ring.copyOut(0, count: 2) == pair)
        }
        ring.copyIn(0, [1, 0])
        #expect(ring.copyOut(0, count: 2) == BinaryEncoder.emptyEncoding)
        var buffer = [UInt8](repeating: 9, count: 50)
        ring.copyIn(0, [4, 5, 6])
        ring.copyOut(0, count: 3, into: &buffer)
        #expect(buffer == [4, 5, 6])
        ring.copyOut(0, count: 0, into: &buffer)
        #expect(buffer.isEmpty)
    }
}
