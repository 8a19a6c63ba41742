import EnclaveHost
import Foundation
import Synchronization
import TestInterface
import Testing

/// The regular call path serves a request on the thread that read it (the enclave's reader serves ECALLs, a host
/// caller reading its own answer serves the OCALLs that arrive meanwhile). These tests pin down that a handler
/// that blocks its thread never holds back other calls: another thread takes reading over.
@Suite("Call path: handlers on the reading thread")
struct CallPathTests {
    final class Flag: Sendable {
        private let value = Mutex(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
    }

    final class EnclaveBox: Sendable {
        let enclave = Mutex<Enclave?>(nil)
    }

    /// An ECALL whose handler blocks its enclave thread for 10 s (read and served by the same worker): an echo sent
    /// behind it is answered while it still blocks.
    @Test func aBlockingECallHandlerDoesNotHoldBackTheNextCall() async throws {
        let enclave = try await CallTests.load()
        let sleepDone = Flag()
        let sleeper = Task {
            _ = try await enclave.call(Sleep.self, 10_000)
            sleepDone.set()
        }
        // Let the sleeping call be read and start blocking its worker first.
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await enclave.call(Echo.self, [7, 8, 9]) == [7, 8, 9])
        #expect(!sleepDone.isSet, "the echo waited for the blocking handler")
        sleeper.cancel()
        await enclave.terminate()
        _ = await sleeper.result
    }

    /// An OCALL handler that blocks the host thread serving it (the caller of the ECALL, which read the OCALL) until
    /// another ECALL completes: that ECALL's answer is read by the channel thread, so the handler is released.
    @Test func aBlockingOCallHandlerDoesNotHoldBackOtherCalls() async throws {
        let echoed = Flag()
        let enclave = try await CallTests.load { options in
            options.ocalls.register(HostTransform.self) { text in
                guard text == "block" else { return text.uppercased() }
                // Blocks this thread (as a synchronous computation would), for at most 10 s.
                for _ in 0..<1000 where !echoed.isSet { usleep(10_000) }
                return echoed.isSet ? "RELEASED" : "TIMED OUT"
            }
        }
        let blocked = Task { try await enclave.call(AskHost.self, "block") }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await enclave.call(Echo.self, [1]) == [1])
        echoed.set()
        #expect(try await blocked.value == "RELEASED")
        // Calls keep reading their own answers afterwards.
        #expect(try await enclave.call(AskHost.self, "again") == "AGAIN")
        await enclave.terminate()
    }

    /// An OCALL handler that makes an ECALL on the same enclave (re-entrancy) completes.
    @Test func anOCallHandlerCanCallTheEnclaveAgain() async throws {
        let box = EnclaveBox()
        let enclave = try await CallTests.load { options in
            options.ocalls.register(HostTransform.self) { text in
                guard let enclave = box.enclave.withLock({ $0 }) else { return "no enclave" }
                let echoed = try await enclave.call(Echo.self, Array(text.utf8))
                return String(decoding: echoed, as: UTF8.self).uppercased()
            }
        }
        box.enclave.withLock { $0 = enclave }
        for word in ["one", "two", "three"] {
            #expect(try await enclave.call(AskHost.self, word) == word.uppercased())
        }
        box.enclave.withLock { $0 = nil }
        await enclave.terminate()
    }

    /// The host stops and continues the enclave (SIGSTOP, SIGCONT) while its idle workers wait with a timeout: the
    /// interrupted waits resume through `restart_syscall`, which the sandbox allows, and the enclave keeps serving.
    @Test func stoppingAndContinuingTheEnclaveKeepsItServing() async throws {
        let enclave = try await CallTests.load()
        for round in 0..<5 {
            // Calls just made: a worker stands by with a timed wait.
            for _ in 0..<50 { _ = try await enclave.call(Echo.self, [UInt8(round)]) }
            #expect(kill(enclave.processID, SIGSTOP) == 0)
            try await Task.sleep(for: .milliseconds(20))
            #expect(kill(enclave.processID, SIGCONT) == 0)
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await enclave.call(Echo.self, [1, 2]) == [1, 2])
        }
        #expect(!enclave.isTerminated)
        await enclave.terminate()
    }

    /// Many callers at once, each ECALL making an OCALL: every answer reaches its caller, whoever reads.
    @Test func concurrentECallsWithOCallsAllComplete() async throws {
        let enclave = try await CallTests.load()
        let answers = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let word = "w\(index)"
                    return try await enclave.call(AskHost.self, word) == word.uppercased()
                }
            }
            var ok = 0
            for try await result in group where result { ok += 1 }
            return ok
        }
        #expect(answers == 200)
        await enclave.terminate()
    }
}
