internal import CEnclaveSystem
internal import EnclaveCore

#if canImport(Glibc)
internal import Glibc
#endif

/// The enclave process's self-confinement, run by the runtime before any application code.
///
/// Inherited descriptors are closed by the loader between fork and exec, not here: by the time `main` runs, the
/// Swift runtime and Dispatch may already own descriptors (its epoll and timer fds) that must stay open.
enum Sandbox {
    /// The fd the loader hands the enclave its call channel on.
    static let channelFD: Int32 = 3

    /// Whether `fd` is a socket (the loader's channels are).
    static func isSocket(_ fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Stop core dumps, ptrace attach and `/proc/PID/mem` access by non-root peers. `execve` re-enabled dumping,
    /// so this must run in the new image.
    static func makeUndumpable() throws(EnclaveError) {
        guard ek_set_not_dumpable() == 0 else { throw .sandboxFailed("PR_SET_DUMPABLE failed (errno \(ek_errno()))") }
    }

    /// Every file-backed mapping of this process with its device and inode, read from `/proc/self/maps` while
    /// files can still be opened.
    static func mappings() -> [LaunchProtocol.Mapping] {
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            data.append(contentsOf: chunk[0..<got])
            if data.count > 16 << 20 { break }
        }
        var mappings = Set<LaunchProtocol.Mapping>()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            // address perms offset dev inode pathname — the path is everything after the fifth field.
            var fields: [Substring] = []
            var index = line.startIndex
            while index < line.endIndex && fields.count < 5 {
                let start = index
                while index < line.endIndex && line[index] != " " { index = line.index(after: index) }
                fields.append(line[start..<index])
                while index < line.endIndex && line[index] == " " { index = line.index(after: index) }
            }
            let path = line[index...]
            guard fields.count == 5, path.hasPrefix("/"), let inode = UInt64(fields[4]) else { continue }
            mappings.insert(.init(path: String(path), device: String(fields[3]), inode: inode))
        }
        return mappings.sorted { ($0.path, $0.inode) < ($1.path, $1.inode) }
    }

    /// Report crashes (signal, address, executable mappings) on stderr: the Swift backtracer cannot run once the
    /// sandbox forbids it to start a process.
    static func installCrashReporter() { ek_install_crash_reporter() }

    /// Keep large buffers on the heap (the enclave owns its process, so it may tune the allocator).
    static func tuneAllocator() { ek_tune_allocator() }

    /// Install the seccomp allowlist on all threads.
    static func installFilter() throws(EnclaveError) {
        guard ek_install_seccomp() == 0 else {
            throw .sandboxFailed("seccomp filter could not be installed (errno \(ek_errno()))")
        }
    }
}
