import Crypto
import EnclaveHost
import Foundation
import Synchronization
import TestInterface
import Testing

/// The loader confines the enclave's process before it executes the image: an image that never calls the runtime
/// (so never installs the runtime's seccomp filter) can read what it needs to start and nothing else — in particular
/// not the simulated platform's root secret, from which every sealing key and the quote-signing keys derive.
@Suite("Loader confinement", .serialized)
struct ConfinementTests {
    /// A hostile image: a plain C program, signed by its own key and launched by an honest host, that never speaks
    /// to the runtime. It tries each path in its arguments (`+PATH` creates the file instead of reading it; `@unix`
    /// and `@udp` create a socket), prints what happened and its effective and bounding capabilities to standard
    /// error, and exits.
    static let hostileSource = #"""
        #include <errno.h>
        #include <fcntl.h>
        #include <stdio.h>
        #include <string.h>
        #include <sys/socket.h>
        #include <unistd.h>

        int main(int argc, char **argv) {
            for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "@unix") == 0 || strcmp(argv[i], "@udp") == 0) {
                    int fd = argv[i][1] == 'u' && argv[i][2] == 'n' ? socket(AF_UNIX, SOCK_STREAM, 0)
                                                                    : socket(AF_INET, SOCK_DGRAM, 0);
                    if (fd < 0) fprintf(stderr, "%s: errno %d\n", argv[i], errno);
                    else fprintf(stderr, "%s: socket\n", argv[i]);
                    continue;
                }
                const char *path = argv[i][0] == '+' ? argv[i] + 1 : argv[i];
                int fd = argv[i][0] == '+' ? open(path, O_WRONLY | O_CREAT | O_EXCL, 0600) : open(path, O_RDONLY);
                if (fd < 0) {
                    fprintf(stderr, "%s: errno %d\n", argv[i], errno);
                    continue;
                }
                char buffer[4096];
                ssize_t got = argv[i][0] == '+' ? write(fd, "x", 1) : read(fd, buffer, sizeof buffer);
                fprintf(stderr, "%s: %zd bytes\n", argv[i], got);
                close(fd);
            }
            char status[8192];
            int fd = open("/proc/self/status", O_RDONLY);
            ssize_t got = fd < 0 ? -1 : read(fd, status, sizeof status - 1);
            status[got < 0 ? 0 : got] = 0;
            for (char *line = strtok(status, "\n"); line; line = strtok(NULL, "\n"))
                if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapBnd:", 7) == 0) fprintf(stderr, "%s\n", line);
            fprintf(stderr, "done\n");
            return 0;
        }
        """#

    /// Compile ``hostileSource`` with the toolchain's C compiler (the package's C targets need one; `cc` if `clang` is
    /// not on the path) and sign it with a fresh key of the attacker's.
    static func hostileImage() throws -> (image: String, signature: String) {
        let directory = try Fixtures.temporaryDirectory("hostile")
        let source = directory + "/hostile.c"
        let image = directory + "/hostile"
        try Data(hostileSource.utf8).write(to: URL(fileURLWithPath: source))
        var compiled = try Fixtures.run("/usr/bin/env", ["clang", "-O1", "-o", image, source])
        if compiled.status != 0 { compiled = try Fixtures.run("/usr/bin/env", ["cc", "-O1", "-o", image, source]) }
        try #require(compiled.status == 0, "the hostile image did not compile: \(compiled.output)")
        let config = EnclaveConfig(productID: 66, securityVersion: 1)
        let measured = try EnclaveImage(path: image)
        let body = EnclaveSignature.Body(manifest: measured.manifest(config: config), config: config)
        let signature = try EnclaveSignature(signing: body, with: P256.Signing.PrivateKey())
        let signaturePath = image + ".sig"
        try Data(signature.bytes).write(to: URL(fileURLWithPath: signaturePath))
        return (image, signaturePath)
    }

    /// Launch the hostile image through the normal loader with `arguments` on a platform of its own; the lines it
    /// wrote to standard error (it exits, so the load itself fails).
    static func runHostile(_ arguments: (_ platformDirectory: String) -> [String]) async throws -> [String] {
        let platformDirectory = try Fixtures.temporaryDirectory("platform") + "/platform"
        return try await launchHostile(hostileImage(), platformDirectory: platformDirectory, arguments: arguments).lines
    }

    /// Launch the signed hostile image through the normal loader with `arguments`, on a platform in
    /// `platformDirectory`, running `afterMeasurement` between measurement and spawn; the load's error (if any: the
    /// image exits, so a load that started it fails too) and the lines the image wrote to standard error.
    static func launchHostile(
        _ signed: (image: String, signature: String),
        platformDirectory: String,
        arguments: (_ platformDirectory: String) -> [String],
        afterMeasurement: (@Sendable () -> Void)? = nil
    ) async throws -> (error: EnclaveError?, lines: [String]) {
        let platform = try SimulatedPlatform.open(directory: platformDirectory)
        #expect(FileManager.default.isReadableFile(atPath: platformDirectory + "/root-secret"))
        let lines = Mutex<[String]>([])
        var options = Enclave.Options()
        options.platform = platform
        options.evidenceSource = .simulated
        options.signaturePath = signed.signature
        options.startTimeout = Fixtures.startTimeout
        options.arguments = arguments(platformDirectory)
        options.standardError = { line in lines.withLock { $0.append(line) } }
        options.afterMeasurement = afterMeasurement
        let outcome = await capture { try await Enclave.load(path: signed.image, options: options) }
        var error: EnclaveError?
        switch outcome {
        case .success(let enclave): await enclave.terminate()
        case .failure(let failure): error = failure as? EnclaveError
        }
        // Refused before the process started: there is no image to wait for.
        if error?.code == .measurementMismatch { return (error, lines.withLock { $0 }) }
        // The image exits at once; its last line reaches the sink when the forwarder reads the pipe's end. A hang
        // guard only: the loop ends as soon as the line is there.
        let deadline = Date().addingTimeInterval(120)
        while !lines.withLock({ $0.contains("done") }) && Date() < deadline { usleep(10_000) }
        return (error, lines.withLock { $0 })
    }

    /// The hostile image, linked against two libraries of the attacker's own in a directory it can write:
    /// `liby.so` and `libx.so`, both measured and trusted. `liby.so` is rebuilt afterwards with the soname
    /// `libx.so`, so that the dynamic loader takes it for both and never opens `libx.so` at start: the image runs
    /// whatever `libx.so` has become by then. The signed image, and the path of `libx.so`.
    static func hostileImageWithLibraries() throws -> (signed: (image: String, signature: String), library: String) {
        let directory = try Fixtures.temporaryDirectory("libraries")
        let source = directory + "/y.c"
        try Data("int enclavekit_test_y(void) { return 1; }\n".utf8).write(to: URL(fileURLWithPath: source))
        func compile(_ arguments: [String]) throws {
            var compiled = try Fixtures.run("/usr/bin/env", ["clang"] + arguments)
            if compiled.status != 0 { compiled = try Fixtures.run("/usr/bin/env", ["cc"] + arguments) }
            try #require(compiled.status == 0, "did not compile: \(compiled.output)")
        }
        func library(_ name: String, soname: String) throws {
            try compile(["-shared", "-fPIC", "-o", directory + "/" + name, "-Wl,-soname," + soname, source])
        }
        try library("liby.so", soname: "liby.so")
        try library("libx.so", soname: "libx.so")
        let hostile = directory + "/hostile.c"
        let image = directory + "/hostile"
        try Data(hostileSource.utf8).write(to: URL(fileURLWithPath: hostile))
        try compile([
            "-O1", "-o", image, hostile, "-L" + directory, "-Wl,--no-as-needed", "-ly", "-lx",
            "-Wl,-rpath," + directory,
        ])
        try library("liby.so", soname: "libx.so")
        let config = EnclaveConfig(productID: 66, securityVersion: 1)
        let measured = try EnclaveImage(path: image)
        let library = URL(fileURLWithPath: directory + "/libx.so").resolvingSymlinksInPath().path
        try #require(measured.trustedFiles.contains { $0.path == library }, "\(measured.trustedFiles)")
        let body = EnclaveSignature.Body(manifest: measured.manifest(config: config), config: config)
        let signature = try EnclaveSignature(signing: body, with: P256.Signing.PrivateKey())
        try Data(signature.bytes).write(to: URL(fileURLWithPath: image + ".sig"))
        return ((image, image + ".sig"), library)
    }

    /// How the attacker swaps a trusted library for the platform's root secret after measurement.
    enum Swap: String, CaseIterable, Sendable {
        /// A symbolic link to the secret: the final component is not followed.
        case symbolicLink
        /// A hard link to the secret: a regular file, but not the measured device and inode.
        case hardLink
    }

    /// Review 7, finding 4: between measurement and spawn, someone who can write a library directory replaces a
    /// trusted library with a link to the platform's root secret (and could swap it back before the loader's later
    /// check of the mappings). The loader's child grants a trusted file only while its path still names the
    /// measured regular file, so the launch fails closed and the secret stays unreadable. Failed before: the rule
    /// followed the link, and the image read the secret's bytes through the library's path.
    @Test(arguments: Swap.allCases)
    func trustedLibrarySwappedAfterMeasurementFailsTheLaunch(_ swap: Swap) async throws {
        let hostile = try Self.hostileImageWithLibraries()
        let library = hostile.library
        let platformDirectory = try Fixtures.temporaryDirectory("platform") + "/platform"
        let secret = platformDirectory + "/root-secret"
        let swapped = Mutex(false)
        let (error, lines) = try await Self.launchHostile(
            hostile.signed,
            platformDirectory: platformDirectory,
            arguments: { platform in [library, platform + "/root-secret"] },
            afterMeasurement: {
                guard unlink(library) == 0 else { return }
                let linked = swap == .symbolicLink ? symlink(secret, library) : link(secret, library)
                swapped.withLock { $0 = linked == 0 }
            }
        )
        #expect(swapped.withLock { $0 }, "the library was not swapped for the secret")
        #expect(error?.code == .measurementMismatch, "\(String(describing: error)); image wrote \(lines)")
        #expect(error?.reason.contains(library) == true, "\(String(describing: error))")
        let why = swap == .symbolicLink ? "symbolic link" : "another file"
        #expect(error?.reason.contains(why) == true, "\(String(describing: error))")
        #expect(!lines.contains { $0.hasSuffix(" bytes") }, "the image read through the swapped path: \(lines)")
    }

    /// The reviewer's attack (review 6, finding C): the image opens the platform's root secret and the other
    /// platform files, directly and through the host's `/proc` entries. Refused: it can read what it needs to start
    /// (its interpreter and libraries, the loader's cache, its own `/proc` files) and can create nothing.
    @Test func hostileImageCannotReadThePlatformSecrets() async throws {
        let host = getpid()
        let lines = try await Self.runHostile { platform in
            [
                platform + "/root-secret", platform, "+" + platform + "/planted", "/etc/passwd",
                "/proc/\(host)/root" + platform + "/root-secret", "/proc/\(host)/environ", "/proc/self/maps",
            ]
        }
        let eaccess = "errno \(EACCES)"
        #expect(lines.contains { $0.hasSuffix("/root-secret: \(eaccess)") && !$0.hasPrefix("/proc") }, "\(lines)")
        #expect(lines.contains { $0.hasSuffix("/platform: \(eaccess)") }, "\(lines)")
        #expect(lines.contains { $0.hasSuffix("/planted: \(eaccess)") }, "\(lines)")
        #expect(lines.contains("/etc/passwd: \(eaccess)"), "\(lines)")
        // The host's own view of the file system and its environment: ptrace access, refused outside the domain.
        let viaHost = lines.filter { $0.hasPrefix("/proc/\(host)/") }
        #expect(viaHost.count == 2 && viaHost.allSatisfy { $0.contains(": errno ") }, "\(lines)")
        // What the runtime reads before its filter is in place still works.
        #expect(lines.contains { $0.hasPrefix("/proc/self/maps: ") && !$0.contains("errno") }, "\(lines)")
        #expect(!lines.contains { $0.contains("root-secret: 32 bytes") }, "\(lines)")
    }

    /// What Landlock leaves open (UDP, connecting to a named UNIX socket such as a container daemon's) is closed by
    /// the loader's own seccomp filter: the image can create no socket.
    @Test func hostileImageCannotCreateSockets() async throws {
        let lines = try await Self.runHostile { _ in ["@unix", "@udp"] }
        #expect(lines.contains("@unix: errno \(EPERM)"), "\(lines)")
        #expect(lines.contains("@udp: errno \(EPERM)"), "\(lines)")
    }

    /// The image runs without capabilities even when the host is root: none effective, none it could regain.
    @Test func hostileImageHasNoCapabilities() async throws {
        let lines = try await Self.runHostile { _ in [] }
        // The host escapes the tab in the enclave's standard error.
        #expect(lines.contains("CapEff:\\u{9}0000000000000000"), "\(lines)")
        // Only root can empty its bounding set; any other user gains nothing at exec (no_new_privs).
        if getuid() == 0 { #expect(lines.contains("CapBnd:\\u{9}0000000000000000"), "\(lines)") }
    }

    /// Without Landlock the load fails closed and names the opt-out; with the opt-out the enclave runs unconfined.
    @Test(arguments: [ENOSYS, EOPNOTSUPP])
    func noLandlockFailsClosedUnlessTheHostOptsOut(_ code: Int32) throws {
        let error = #expect(throws: EnclaveError.self) {
            try Confinement.landlockABI(kernelABI: -1, errorCode: code, allowUnconfined: false)
        }
        #expect(error?.code == .sandboxFailed)
        #expect(error?.reason.contains("ENCLAVEKIT_ALLOW_UNCONFINED=1") == true, "\(String(describing: error))")
        #expect(try Confinement.landlockABI(kernelABI: -1, errorCode: code, allowUnconfined: true) == 0)
        // Where the kernel has Landlock the opt-out changes nothing.
        #expect(try Confinement.landlockABI(kernelABI: 7, errorCode: 0, allowUnconfined: true) == 7)
        #expect(try Confinement.landlockABI(kernelABI: 1, errorCode: 0, allowUnconfined: false) == 1)
    }

    /// An honest enclave starts and serves under the confinement, and its own sandbox still refuses `open`.
    @Test func honestEnclaveStartsConfined() async throws {
        let signed = try Fixtures.sign()
        let enclave = try await Enclave.load(path: signed.image, options: Fixtures.options(signed))
        #expect(try await enclave.call(Echo.self, [1, 2, 3]) == [1, 2, 3])
        #expect(try await enclave.call(Attempt.self, "open") == EPERM)
        await enclave.terminate()
    }
}
