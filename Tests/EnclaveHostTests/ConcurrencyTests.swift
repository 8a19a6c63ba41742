import EnclaveHost
import Foundation
import Synchronization
import TestInterface
import Testing

/// Swift concurrency inside an enclave runs on the enclave's own threads only: its worker pool is the global
/// executor and its main thread the main actor's, so Dispatch's cooperative pool (whose monitor opens
/// /proc/TID/stat, which the sandbox refuses, and then traps) never starts.
@Suite("Swift concurrency inside the enclave")
struct ConcurrencyTests {
    /// The names of the enclave's threads other than its main thread, by thread ID.
    static func threads(of pid: Int32) -> [String: String] {
        let directory = "/proc/\(pid)/task"
        guard let tids = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [:] }
        var names: [String: String] = [:]
        for tid in tids where tid != String(pid) {
            let name = (try? String(contentsOfFile: "\(directory)/\(tid)/comm", encoding: .utf8)) ?? ""
            names[tid] = name.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return names
    }

    /// The enclave's threads other than its main thread that are not the runtime's own: the runtime names its
    /// workers `enclave-w…` and its timer `enclave-timer`; its channel reader keeps the process's name. Anything
    /// else (Dispatch's workers are `com.apple.root…`) is foreign.
    static func foreignThreads(of pid: Int32) -> [String] {
        let own = ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return threads(of: pid).filter { !$0.value.hasPrefix("enclave-") && $0.value != own }
            .map { "\($0.key):\($0.value)" }
    }

    /// What an enclave wrote to its stderr (a crash report, a runtime trap message).
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    /// Options that collect what the enclave writes to stderr into `lines`.
    static func options(_ signed: Fixtures.Signed, into lines: Lines) -> Enclave.Options {
        var options = Fixtures.options(signed)
        options.standardError = { line in lines.lines.withLock { $0.append(line) } }
        return options
    }

    /// Many enclave launches, each serving concurrent calls that each run every construct hundreds of times (with
    /// the calls themselves the load on both CPUs): every answer is right, no enclave dies or writes a crash
    /// report, and no thread but the runtime's own ever runs in the enclave.
    @Test func everyConstructUnderLoadAcrossLaunches() async throws {
        let launches = 20
        let concurrentCalls = 4
        let iterations = 500
        let expected = (0..<iterations).reduce(0) { $0 &+ ConcurrencyWorkout.expected(iteration: $1) }
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1, maxThreads: 8))
        var foreign = Set<String>()
        for _ in 0..<launches {
            let stderr = Lines()
            let enclave = try await Enclave.load(path: signed.image, options: Self.options(signed, into: stderr))
            let pid = enclave.processID
            // Sample the enclave's threads while the calls run.
            let sampler = Task {
                var seen = Set<String>()
                while !Task.isCancelled {
                    seen.formUnion(Self.foreignThreads(of: pid))
                    try? await Task.sleep(for: .milliseconds(2))
                }
                return seen
            }
            let answers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<concurrentCalls {
                    group.addTask { try await enclave.call(ConcurrencyWorkout.self, iterations) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            sampler.cancel()
            foreign.formUnion(await sampler.value)
            foreign.formUnion(Self.foreignThreads(of: pid))
            #expect(answers == Array(repeating: expected, count: concurrentCalls))
            // The enclave survived the load and keeps serving.
            #expect(try await enclave.call(Echo.self, [7]) == [7])
            #expect(kill(pid, 0) == 0)
            await enclave.terminate()
            let written = stderr.all
            #expect(written.isEmpty, "the enclave wrote to stderr: \(written.prefix(20))")
        }
        #expect(foreign.isEmpty, "threads other than the enclave runtime's: \(foreign.sorted())")
    }

    /// Dispatch's pool never starts: after every construct has run, the enclave's threads are exactly the runtime's
    /// (its workers, its timer thread, its platform channel reader), and the main actor ran on the main thread.
    @Test func dispatchPoolNeverStarts() async throws {
        let signed = try Fixtures.sign(config: EnclaveConfig(productID: 1, securityVersion: 1, maxThreads: 8))
        let stderr = Lines()
        let enclave = try await Enclave.load(path: signed.image, options: Self.options(signed, into: stderr))
        let pid = enclave.processID
        _ = try await enclave.call(ConcurrencyWorkout.self, 200)
        #expect(try await enclave.call(MainActorThread.self, Empty()) == pid)
        let names = Self.threads(of: pid)
        let foreign = Self.foreignThreads(of: pid)
        await enclave.terminate()
        let workers = names.values.filter { $0.hasPrefix("enclave-w") }
        #expect(workers.count >= 2, "threads: \(names.values.sorted())")
        #expect(names.values.filter { $0 == "enclave-timer" }.count == 1, "threads: \(names.values.sorted())")
        // Besides the workers and the timer: the platform channel's reader (it inherits the name of the worker that
        // started it), nothing else.
        #expect(names.count <= Set(workers).count + 2, "threads: \(names.values.sorted())")
        #expect(foreign.isEmpty, "threads: \(names.values.sorted())")
        #expect(!names.values.contains { $0.hasPrefix("com.apple") || $0.contains("dispatch") })
        #expect(stderr.all.isEmpty)
    }

    /// The enclaves that use the runtime's entry point (`EnclaveApplication.main()`, which the test enclave replaces
    /// with its own) start no Dispatch thread either. That `main` was a nonisolated `async` function, entered by a
    /// hop to Dispatch's pool before the runtime installed its executors: every such enclave started with three of
    /// Dispatch's threads (`com.apple.root.default-qos`, seen as `oot.default-qos` and `-qos.overcommit`).
    @Test(arguments: ["HelloEnclave", "VaultEnclave", "CleanRoomEnclave"])
    func runtimeEntryPointStartsNoDispatchThread(product: String) async throws {
        let signed = try Fixtures.sign(product)
        let stderr = Lines()
        let enclave = try await Enclave.load(path: signed.image, options: Self.options(signed, into: stderr))
        let names = Self.threads(of: enclave.processID)
        let foreign = Self.foreignThreads(of: enclave.processID)
        await enclave.terminate()
        #expect(names.values.filter { $0 == "enclave-timer" }.count == 1, "threads: \(names.values.sorted())")
        #expect(foreign.isEmpty, "threads: \(names.values.sorted())")
        #expect(stderr.all.isEmpty)
    }

    /// `Task.sleep` inside the enclave waits at least as long as asked (the timer thread, not Dispatch's timers),
    /// and many sleepers with different deadlines all wake in time.
    @Test func sleepsWaitTheirTime() async throws {
        let signed = try Fixtures.sign()
        let enclave = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        let slept = try await enclave.call(SleepProbe.self, 30_000)
        await enclave.terminate()
        // Asked 30 ms: not earlier (a loaded machine only wakes sleepers late), and not a thousand times later (a
        // unit slip would sleep 30 s). No tighter: CI runs the whole suite in parallel on two cores, where a wake-up
        // can come seconds late.
        #expect(slept >= 30_000, "slept \(slept) µs")
        #expect(slept < 20_000_000, "slept \(slept) µs")
    }
}
