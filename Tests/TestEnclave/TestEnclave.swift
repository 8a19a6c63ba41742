// An enclave that misbehaves on request, for the host's sandbox, fault and concurrency tests.
import CEnclaveSystem
import EnclaveRuntime
import Foundation
import Synchronization
import TestInterface

#if canImport(Glibc)
import Glibc
#endif

final class Counter: Sendable {
    let state = Mutex((current: 0, peak: 0))
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// What the platform answered to the key request sent before the start-up handshake, if one was sent.
let earlyPlatformOutcome = Mutex("not attempted")

@main
struct TestEnclave: EnclaveApplication {
    let context: EnclaveContext
    let running = Counter()

    init(context: EnclaveContext) { self.context = context }

    static func main() async {
        if CommandLine.arguments.contains(EarlyPlatformRequest.argument) {
            let outcome = PlatformProbe.requestKeyBeforeHello()
            earlyPlatformOutcome.withLock { $0 = outcome }
        }
        await EnclaveRuntime.run(Self.self)
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(Echo.self) { $0 }
        calls.register(Seal.self) { request in
            try await context.seal(request.plaintext, policy: request.policy, additionalData: request.additionalData)
        }
        calls.register(Unseal.self) { blob in try await context.unseal(blob).plaintext }
        calls.register(SealStream.self) { request in
            var writer = try await context.sealStream(policy: request.policy, chunkSize: request.chunkSize)
            var pieces = [writer.header]
            let sealed = try writer.write(request.bytes) + writer.finish()
            // Split the sealed bytes back into their chunks (u32 length + body) so tests can drop or reorder them.
            var position = 0
            while position < sealed.count {
                let length = sealed[position..<position + 4].reversed().reduce(0) { $0 << 8 | Int($1) }
                pieces.append(Array(sealed[position..<position + 4 + length]))
                position += 4 + length
            }
            return pieces
        }
        calls.register(UnsealStream.self) { request in
            // request.bytes is the whole sealed stream; feed it in pieces of request.chunkSize bytes.
            let headerEnd = min(request.bytes.count, 64)
            var reader = try await context.unsealStream(Array(request.bytes[..<headerEnd]))
            var plaintext = reader.pending
            var position = headerEnd
            while position < request.bytes.count {
                let end = min(request.bytes.count, position + request.chunkSize)
                plaintext += try reader.feed(request.bytes[position..<end])
                position = end
            }
            try reader.finish()
            return plaintext
        }
        calls.register(GetTargetInfo.self) { _ in context.targetInfo }
        calls.register(Evidence.self) { reportData in try await context.evidence(reportData: reportData) }
        calls.register(MakeReport.self) { request in
            try await context.report(for: request.target, reportData: request.reportData)
        }
        calls.register(CheckReport.self) { bytes in try await context.verifyReport(bytes).identity }
        calls.register(Identity.self) { _ in context.identity }
        calls.register(Fail.self) { message in throw TestFailure(description: message) }
        calls.register(AskHost.self) { text in try await context.ocall(HostTransform.self, text) }
        calls.register(Sleep.self) { [running] milliseconds in
            running.state.withLock {
                $0.current += 1
                $0.peak = max($0.peak, $0.current)
            }
            // Blocks this enclave thread (as a long computation would); no timer on Dispatch's pool.
            usleep(useconds_t(min(milliseconds, 60_000) * 1000))
            return running.state.withLock {
                $0.current -= 1
                return $0.peak
            }
        }
        calls.register(Attempt.self) { what in
            errno = 0
            switch what {
            case "open":
                let fd = open("/etc/hostname", O_RDONLY)
                if fd >= 0 {
                    close(fd)
                    return 0
                }
            case "socket":
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                if fd >= 0 {
                    close(fd)
                    return 0
                }
            case "exec":
                let args: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
                execv("/bin/true", args)
            case "fork":
                let pid = fork()
                if pid == 0 { _exit(0) }
                if pid > 0 { return 0 }
            case "ptrace":
                if ek_syscall3(ek_sys_ptrace(), 0, 0, 0) == 0 { return 0 }  // ptrace(PTRACE_TRACEME)
            case "mount":
                // Not on the allowlist at all: the process is killed.
                _ = ek_syscall3(ek_sys_mount(), 0, 0, 0)
            default:
                throw TestFailure(description: "unknown attempt \(what)")
            }
            return errno
        }
        calls.register(AttemptAgainst.self) { request in Attack.attempt(request.operation, target: request.target) }
        calls.register(WriteStandardError.self) { bytes in
            _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            return Empty()
        }
        calls.register(EarlyPlatformRequest.self) { _ in earlyPlatformOutcome.withLock { $0 } }
        calls.register(ConcurrencyWorkout.self) { iterations in
            try await Workout.run(iterations: min(max(iterations, 0), 100_000))
        }
        calls.register(MainActorThread.self) { _ in await Workout.mainActorThread() }
        calls.register(SleepProbe.self) { micros in try await Workout.sleepProbe(microseconds: micros) }
        calls.register(ReleaseKeyProbe.self) { request in try await Self.releaseKeyProbe(request, context: context) }
        calls.register(FloodHost.self) { request in
            let text = String(repeating: "a", count: request.size)
            return await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<request.count {
                    group.addTask {
                        do {
                            _ = try await context.ocall(HostTransform.self, text)
                            return false
                        } catch {
                            return (error as? EnclaveError)?.code == .limitExceeded
                        }
                    }
                }
                var refused = 0
                for await wasRefused in group where wasRefused { refused += 1 }
                return refused
            }
        }
        calls.register(ScribbleSwitchlessRing.self) { request in
            // The ring is fd 5; its slots follow a 64-byte header, each a 64-byte header and its capacity (word 3 of
            // the ring's header).
            var size: UInt64 = 0
            guard let base = ek_ring_map(5, 64 << 20, &size), request.word >= 0, request.word < 16 else {
                throw TestFailure(description: "no switchless ring to scribble on (errno \(errno))")
            }
            defer { _ = ek_ring_unmap(base, size) }
            let capacity = Int(ek_atomic_load32(base.assumingMemoryBound(to: UInt32.self) + 3))
            let offset = 64 + request.slot * (64 + capacity) + request.word * 4
            guard request.slot >= 0, offset + 4 <= Int(size) else { throw TestFailure(description: "no such slot") }
            ek_atomic_store32((base + offset).assumingMemoryBound(to: UInt32.self), request.value)
            return Empty()
        }
        let nothingRuns = Mutex(0)
        calls.register(CountedNothing.self) { (_: Empty) throws -> Empty in
            nothingRuns.withLock { $0 += 1 }
            return Empty()
        }
        calls.register(CountedNothingRuns.self) { (_: Empty) throws -> Int in nothingRuns.withLock { $0 } }
        calls.register(Crash.self) { how in
            switch how {
            case "trap":
                let values: [Int] = []
                _ = values[1]
            case "fatal":
                fatalError("requested crash")
            default:
                abort()
            }
            return Empty()
        }
    }
}
