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

@main
struct TestEnclave: EnclaveApplication {
    let context: EnclaveContext
    let running = Counter()

    init(context: EnclaveContext) { self.context = context }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(Echo.self) { $0 }
        calls.register(Identity.self) { _ in context.identity }
        calls.register(Fail.self) { message in throw TestFailure(description: message) }
        calls.register(AskHost.self) { text in try await context.ocall(HostTransform.self, text) }
        calls.register(Sleep.self) { [running] milliseconds in
            running.state.withLock {
                $0.current += 1
                $0.peak = max($0.peak, $0.current)
            }
            try await Task.sleep(for: .milliseconds(milliseconds))
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
