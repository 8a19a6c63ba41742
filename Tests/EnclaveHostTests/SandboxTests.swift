import EnclaveHost
import Foundation
import Synchronization
import TestInterface
import Testing

@Suite("Sandbox and faults", .serialized)
struct SandboxTests {
    static func load() async throws -> Enclave {
        let signed = try Fixtures.sign()
        return try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
    }

    /// Each forbidden operation fails with EPERM, and the enclave lives on.
    @Test(arguments: [("open", 1), ("socket", 1), ("exec", 1), ("fork", 1), ("ptrace", 1)])
    func forbiddenOperationFails(_ operation: String, errno expected: Int32) async throws {
        let enclave = try await Self.load()
        #expect(try await enclave.call(Attempt.self, operation) == expected)
        // Still alive and serving.
        #expect(try await enclave.call(Echo.self, [1]) == [1])
        await enclave.terminate()
    }

    /// What a compromised enclave would try against the host (whose pid it is given) or against its own
    /// confinement: each is refused with EPERM, and the enclave lives on. `tgkill` and `tkill` send signal 0 (a
    /// permission probe), `prlimitRead`/`prlimitSet` read or rewrite the host's open-file limit, the `stat`
    /// variants name a path (`fstatatPathWithEmptyPathFlag` disguises one behind AT_EMPTY_PATH and a real fd).
    @Test(arguments: [
        "tgkill", "tkill", "prlimitRead", "prlimitSet", "stat", "fstatatPathWithEmptyPathFlag", "fstatatCWDEmptyPath",
        "statx", "prctlDumpable", "mmapRWX", "mprotectRWX", "mmapRX", "mprotectRX",
    ])
    func attackFromInsideIsRefused(_ operation: String) async throws {
        let enclave = try await Self.load()
        let outcome = try await enclave.call(
            AttemptAgainst.self,
            AttemptRequest(operation: operation, target: getpid())
        )
        #expect(outcome == EPERM, "\(operation) answered \(outcome)")
        #expect(try await enclave.call(Echo.self, [1]) == [1])
        await enclave.terminate()
    }

    /// The narrowed calls still do what the runtime needs: signal its own threads, read its own limits, stat an
    /// open fd, name a thread, map writable memory.
    @Test(arguments: ["tgkillSelf", "getrlimit", "fstat", "prctlName", "mmapRW"])
    func whatTheRuntimeNeedsStillWorks(_ operation: String) async throws {
        let enclave = try await Self.load()
        let outcome = try await enclave.call(
            AttemptAgainst.self,
            AttemptRequest(operation: operation, target: getpid())
        )
        #expect(outcome == 0, "\(operation) answered \(outcome)")
        await enclave.terminate()
    }

    /// Terminal escapes, carriage returns and bidirectional overrides the enclave writes to stderr reach the host
    /// escaped, line by line.
    @Test func standardErrorReachesTheHostEscaped() async throws {
        let signed = try Fixtures.sign()
        var options = Fixtures.options(signed)
        let lines = Mutex<[String]>([])
        options.standardError = { line in lines.withLock { $0.append(line) } }
        let enclave = try await Enclave.load(path: signed.image, options: options)
        let hostile = "\u{1B}]0;owned\u{07}\u{1B}[2Jred\r\nback\\slash \u{202E}txt\nlast\n"
        _ = try await enclave.call(WriteStandardError.self, Array(hostile.utf8) + [0xFF, 0x0A])
        // Waits only until the 4 lines arrive; 30 s at most (a loaded CI machine reads the pipe late, never early).
        let deadline = ContinuousClock.now + .seconds(30)
        while lines.withLock({ $0.count }) < 4 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = lines.withLock { $0 }
        #expect(
            received == [
                "\\u{1B}]0;owned\\u{7}\\u{1B}[2Jred\\u{D}", "back\\\\slash \\u{202E}txt", "last", "\u{FFFD}",
            ]
        )
        for line in received {
            #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        }
        await enclave.terminate()
    }

    @Test func syscallOutsideTheAllowlistKillsTheEnclave() async throws {
        let enclave = try await Self.load()
        let error = await #expect(throws: EnclaveError.self) { try await enclave.call(Attempt.self, "mount") }
        #expect(error?.code == .enclaveTerminated)
        #expect(error?.reason.contains("SIGSYS") == true)
    }

    @Test(arguments: ["trap", "fatal", "abort"])
    func crashFailsEveryPendingCall(_ how: String) async throws {
        let enclave = try await Self.load()
        // Calls in flight when the enclave dies: they must fail, not hang.
        async let slow1 = capture { try await enclave.call(Sleep.self, 30_000) }
        async let slow2 = capture { try await enclave.call(Sleep.self, 30_000) }
        try await Task.sleep(for: .milliseconds(100))
        let crash = await capture { try await enclave.call(Crash.self, how) }
        for result in await [crash.map { _ in 0 }, slow1, slow2] {
            #expect(throws: EnclaveError.enclaveTerminated("")) { try result.get() }
        }
        // And so does every later call.
        let later = await capture { try await enclave.call(Echo.self, [1]) }
        #expect(throws: EnclaveError.enclaveTerminated("")) { try later.get() }
        #expect(enclave.isTerminated)
    }

    @Test func terminateFailsPendingCallsAndEndsTheProcess() async throws {
        let enclave = try await Self.load()
        async let pending = capture { try await enclave.call(Sleep.self, 30_000) }
        try await Task.sleep(for: .milliseconds(100))
        await enclave.terminate()
        let outcome = await pending
        #expect(throws: EnclaveError.enclaveTerminated("")) { try outcome.get() }
        #expect(kill(enclave.processID, 0) != 0)  // reaped: no such process
    }

    @Test func corruptStreamClosesTheChannelCleanly() async throws {
        let enclave = try await Self.load()
        // A frame header announcing 4 GiB: the enclave must drop the channel, not allocate.
        enclave.injectRawBytes([0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0, 0, 0, 0, 0, 0, 0])
        let reason = await enclave.terminated()
        #expect(reason.code == .enclaveTerminated)
        #expect(reason.reason.contains("exited with status 0"))
    }

    @Test func enclaveProcessIsLockedDown() throws {
        // Start HelloHost as a child, read the enclave pid it prints, inspect /proc.
        let signed = try Fixtures.sign("HelloEnclave")
        let probe = try HostProbe(signed: signed)
        defer { probe.stop() }
        let status = try String(contentsOfFile: "/proc/\(probe.enclavePID)/status", encoding: .utf8)
        #expect(status.contains("NoNewPrivs:\t1"))
        #expect(status.contains("Seccomp:\t2"))
        let environment = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(probe.enclavePID)/environ"))
        #expect(environment.isEmpty)
        // Inherited: only /dev/null on 0 and 1, stderr, the two channel sockets on 3 and 4. Anything else is the
        // runtime's own (Dispatch's epoll, eventfd and timerfd), never a file, pipe or socket from the host.
        let directory = "/proc/\(probe.enclavePID)/fd"
        let fds = try FileManager.default.contentsOfDirectory(atPath: directory).compactMap(Int.init).sorted()
        var targets: [Int: String] = [:]
        for fd in fds { targets[fd] = try FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(fd)") }
        #expect(targets[0] == "/dev/null" && targets[1] == "/dev/null")
        // Standard error is a pipe the host reads and escapes, never the host's own stderr.
        let hostStandardError = try FileManager.default.destinationOfSymbolicLink(
            atPath: "/proc/\(probe.process.processIdentifier)/fd/2"
        )
        #expect(targets[2]?.hasPrefix("pipe:") == true, "fd 2 -> \(targets[2] ?? "?")")
        #expect(targets[2] != hostStandardError, "the enclave holds the host's stderr, \(hostStandardError)")
        #expect(targets[3]?.hasPrefix("socket:") == true)  // the call channel
        #expect(targets[4]?.hasPrefix("socket:") == true)  // the platform channel
        for fd in fds where fd > 4 {
            #expect(targets[fd]?.hasPrefix("anon_inode:") == true, "fd \(fd) -> \(targets[fd] ?? "?")")
        }
        let limits = try String(contentsOfFile: "/proc/\(probe.enclavePID)/limits", encoding: .utf8)
        #expect(limits.contains("Max address space         1073741824"))
    }

    @Test func hostDeathEndsTheEnclave() throws {
        let signed = try Fixtures.sign("HelloEnclave")
        let probe = try HostProbe(signed: signed)
        let enclave = probe.enclavePID
        #expect(HostProbe.isAlive(enclave))
        probe.killHost()
        let deadline = Date().addingTimeInterval(30)  // a hang guard: the loop ends as soon as the enclave is gone
        while HostProbe.isAlive(enclave) && Date() < deadline { usleep(20_000) }
        #expect(!HostProbe.isAlive(enclave))
    }

    @Test func nonRootHostCannotReadEnclaveMemory() throws {
        // CI runs as root, and root may read any process: run host and reader as an unprivileged user.
        let signed = try Fixtures.sign("HelloEnclave")
        // The host's start (it launches an enclave) is waited for up to 1200 × 50 ms: a loaded CI machine is slow.
        let script = """
            set -u
            scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
            export ENCLAVEKIT_PLATFORM_DIR="$scratch/platform"
            exec 9>&1
            fifo=$(mktemp -u); mkfifo "$fifo"
            "$1" --enclave "$2" --signature "$3" --verbose < "$fifo" > "$fifo.out" 2>&1 &
            host=$!
            exec 8> "$fifo"
            i=0; while ! grep -q 'enclave pid:' "$fifo.out" 2>/dev/null; do i=$((i+1)); [ $i -gt 1200 ] && { echo "no pid"; cat "$fifo.out"; exit 3; }; sleep 0.05; done
            pid=$(sed -n 's/^enclave pid: //p' "$fifo.out")
            if (exec 7< /proc/$pid/mem) 2>/dev/null; then echo "enclave: readable"; else echo "enclave: denied"; fi
            sleep 30 & control=$!
            if (exec 7< /proc/$control/mem) 2>/dev/null; then echo "control: readable"; else echo "control: denied"; fi
            kill $control; exec 8>&-; wait $host; rm -f "$fifo" "$fifo.out"
            """
        let scriptPath = (signed.signature as NSString).deletingLastPathComponent + "/probe.sh"
        try Data(script.utf8).write(to: URL(fileURLWithPath: scriptPath))
        let arguments = ["/bin/sh", scriptPath, Fixtures.product("HelloHost"), signed.image, signed.signature]
        let (status, output): (Int32, String)
        if getuid() == 0 {
            (status, output) = try Fixtures.run(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "--"] + arguments
            )
        } else {
            (status, output) = try Fixtures.run(arguments[0], Array(arguments.dropFirst()))
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains("enclave: denied"), "\(output)")
        #expect(output.contains("control: readable"), "\(output)")
    }
}

/// The outcome of an async throwing call, as a value.
func capture<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// HelloHost running as a child process with an open standard input, and the enclave it started.
final class HostProbe {
    let process = Process()
    let input = Pipe()
    let enclavePID: Int32

    init(signed: Fixtures.Signed) throws {
        _ = Fixtures.platformDirectory
        process.executableURL = URL(fileURLWithPath: Fixtures.product("HelloHost"))
        process.arguments = ["--enclave", signed.image, "--verbose", "--signature", signed.signature]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        var text = ""
        let reader = output.fileHandleForReading
        while !text.contains("enclave pid:") || !text.hasSuffix("\n") {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("enclave pid: ") }),
            let pid = Int32(line.dropFirst("enclave pid: ".count))
        else {
            throw EnclaveError.launchFailed("HelloHost printed no pid: \(text)")
        }
        enclavePID = pid
    }

    func killHost() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return !status.contains("State:\tZ")
    }
}
