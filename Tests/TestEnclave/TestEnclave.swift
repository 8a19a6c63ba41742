// An enclave that misbehaves on request, for the host's sandbox, fault and concurrency tests.
import CEnclaveSystem
import EnclaveRuntime
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

enum Echo: EnclaveCall {
    typealias Input = [UInt8]
    typealias Output = [UInt8]
    static var name: String { "test.echo" }
}

enum Identity: EnclaveCall {
    typealias Input = Empty
    typealias Output = EnclaveIdentity
    static var name: String { "test.identity" }
}

/// Try a forbidden operation; answers with the errno it failed with, or 0 if it worked.
enum Attempt: EnclaveCall {
    typealias Input = String
    typealias Output = Int32
    static var name: String { "test.attempt" }
}

enum Crash: EnclaveCall {
    typealias Input = String
    typealias Output = Empty
    static var name: String { "test.crash" }
}

enum Sleep: EnclaveCall {
    typealias Input = UInt64
    typealias Output = Int
    static var name: String { "test.sleep" }
}

enum Fail: EnclaveCall {
    typealias Input = String
    typealias Output = Empty
    static var name: String { "test.fail" }
}

/// OCALL round trip: asks the host to transform a string, returns what it said.
enum AskHost: EnclaveCall {
    typealias Input = String
    typealias Output = String
    static var name: String { "test.askHost" }
}

enum HostTransform: EnclaveCall {
    typealias Input = String
    typealias Output = String
    static var name: String { "test.hostTransform" }
}

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
                if fd >= 0 { close(fd); return 0 }
            case "socket":
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                if fd >= 0 { close(fd); return 0 }
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
