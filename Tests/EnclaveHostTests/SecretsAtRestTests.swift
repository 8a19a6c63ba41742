import Crypto
import EnclaveHost
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Files that hold secrets or sealed data are private from their first byte, and what a killed writer leaves
/// behind is private and cleaned up.
@Suite("Secrets at rest: keys and sealed blobs")
struct SecretsAtRestTests {
    static func mode(_ path: String) -> Int? {
        try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }

    /// `enclave keygen` under strace: every mode the private key's files are created or chmod-ed with is private.
    /// Before: Foundation's atomic write created the temporary (and so the key) 0644 and narrowed it afterwards.
    /// Skipped, with its reason, where strace is not installed (`.ci/run` installs it).
    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"),
            "strace is needed to watch the syscalls (apt-get install strace)"
        )
    )
    func keygenCreatesThePrivateKeyPrivate() throws {
        let strace = "/usr/bin/strace"
        let directory = try Fixtures.temporaryDirectory()
        let trace = directory + "/trace.txt"
        let keys = directory + "/keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: false)
        let run = try Fixtures.run(
            "/bin/sh",
            [
                "-c",
                "umask 022; exec \"$0\" -f -e trace=open,openat,creat,chmod,fchmod,fchmodat -o \"$1\" \"$2\" keygen "
                    + "--out \"$3\"",
                strace, trace, Fixtures.product("enclave"), keys + "/signing.pem",
            ]
        )
        #expect(run.status == 0, "\(run.output)")
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        // Every file keygen creates or chmods in the key's directory holds the key (or is its temporary).
        let keyCalls = lines.filter { $0.contains(keys + "/") }
        var modes: [Int] = []
        for line in keyCalls {
            guard let match = line.range(of: #", 0[0-7]{3,4}\)"#, options: .regularExpression) else { continue }
            let digits = line[match].dropFirst(2).dropLast()
            guard var mode = Int(digits, radix: 8) else { continue }
            if line.contains("O_CREAT") { mode &= ~0o022 }  // the umask applies to creation only
            modes.append(mode)
        }
        #expect(!modes.isEmpty, "no create or chmod of the key seen: \(keyCalls)")
        #expect(modes.allSatisfy { $0 & 0o077 == 0 }, "modes \(modes.map { String($0, radix: 8) }): \(keyCalls)")
        #expect(Self.mode(keys + "/signing.pem") == 0o600)
        // The public key, written beside it, is public.
        let publicRun = try Fixtures.run(
            Fixtures.product("enclave"),
            ["keygen", "--out", directory + "/signing.pem", "--public-out", directory + "/public.pem"]
        )
        #expect(publicRun.status == 0, "\(publicRun.output)")
        #expect(Self.mode(directory + "/signing.pem") == 0o600)
        #expect(Self.mode(directory + "/public.pem") == 0o644)
    }

    /// VaultHost killed while it writes a 16 MiB sealed blob: the temporary it leaves is private, the store is 0700,
    /// and the next start removes leftovers. Before: 0644 `.nosync` temporaries of sealed data stayed for good in a
    /// 0755 store.
    @Test func vaultKilledMidWriteLeavesNothingReadable() async throws {
        _ = Fixtures.platformDirectory  // the enclave's platform, inherited by VaultHost
        let host = Fixtures.product("VaultHost")
        let signed = try Fixtures.sign("VaultEnclave", copyImage: true, key: P256.Signing.PrivateKey())
        let store = try Fixtures.temporaryDirectory() + "/store"
        let arguments = ["put", "--enclave", signed.image, "--signature", signed.signature, "--store", store]
        let secretPath = store + "-secret.bin"
        try Data(count: 16 << 20).write(to: URL(fileURLWithPath: secretPath))

        var seenModes: [String: Int] = [:]
        // The temporary lives only while the blob is written: on a loaded machine this poller may be off the CPU for
        // that whole window, so up to 10 writes are watched (the loop ends at the first one seen).
        for attempt in 0..<10 where seenModes.isEmpty {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: host)
            process.arguments = arguments + ["big\(attempt)"]
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: secretPath))
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning, Date() < deadline, seenModes.isEmpty {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []
                where name.hasPrefix(".") {
                    if let mode = Self.mode(store + "/" + name) { seenModes[name] = mode }
                }
                if seenModes.isEmpty { usleep(200) }
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        #expect(!seenModes.isEmpty, "never saw a temporary of the sealed blob being written")
        #expect(seenModes.values.allSatisfy { $0 == 0o600 }, "temporaries: \(seenModes)")
        #expect(Self.mode(store) == 0o700)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: store)) ?? [] {
            #expect(Self.mode(store + "/" + name) == 0o600, "\(name)")
        }

        // Leftovers of a killed writer (ours, and Foundation's old `.nosync` ones) go at the next start.
        let planted = [".old.sealed.nosyncA1B2.xyz123", ".other.sealed.secret-tmp.4194303.abc"]
        for name in planted {
            #expect(FileManager.default.createFile(atPath: store + "/" + name, contents: Data(count: 1024)))
        }
        let next = try Fixtures.run(host, arguments + ["small"], input: "small secret")
        #expect(next.status == 0, "\(next.output)")
        let names = try FileManager.default.contentsOfDirectory(atPath: store)
        #expect(names.allSatisfy { !$0.hasPrefix(".") }, "left over: \(names)")
        #expect(Self.mode(store + "/small.sealed") == 0o600)
    }

    /// A store others may write into (they could swap blobs) is refused, naming the path and mode.
    @Test func vaultRefusesAWorldWritableStore() throws {
        let store = try Fixtures.temporaryDirectory() + "/open-store"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: false)
        #expect(chmod(store, 0o777) == 0)
        let signed = try Fixtures.sign("VaultEnclave", copyImage: true, key: P256.Signing.PrivateKey())
        let run = try Fixtures.run(
            Fixtures.product("VaultHost"),
            ["put", "--enclave", signed.image, "--signature", signed.signature, "--store", store, "x"],
            input: "secret"
        )
        #expect(run.status != 0)
        #expect(run.output.contains("\(store) has mode 0777"), "\(run.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: store).isEmpty)
    }
}
