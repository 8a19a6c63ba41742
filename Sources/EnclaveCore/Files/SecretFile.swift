internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// The one way EnclaveKit writes a file that holds a secret or sealed data, and prepares the directory it lives in.
///
/// A file is written to a temporary beside it that is created with its final mode (0600 unless asked otherwise)
/// by `open(O_CREAT | O_EXCL | O_NOFOLLOW)`, so no byte ever sits in a file others can read, then `fsync`ed and
/// renamed (or linked, when an existing file must not be replaced) into place, and the directory is `fsync`ed.
/// Temporaries carry the writer's process ID in their name (`.NAME.secret-tmp.PID.RANDOM`); ones whose writer is
/// gone (killed mid-write) are removed by ``removeLeftovers(in:extraMarkers:)``.
package enum SecretFile {
    /// The marker in a temporary's name.
    package static let temporaryMarker = ".secret-tmp."

    /// Write `bytes` to `path` with `mode` (0600 by default) from the first byte: temporary, write, fsync, rename.
    ///
    /// - Parameter replacing: when false and `path` exists, fail with `EEXIST` (reported as
    ///   ``EnclaveError/Code/invalidConfiguration``) instead of replacing it: the file is linked into place.
    /// - Returns: false when `replacing` is false and another writer created `path` first; true when written.
    @discardableResult
    package static func write(
        _ bytes: some Collection<UInt8>,
        to path: String,
        mode: UInt32 = 0o600,
        replacing: Bool = true
    ) throws(EnclaveError) -> Bool {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let temporary =
            directory + "/." + name + temporaryMarker + "\(getpid())."
            + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("cannot create a temporary for", path) }
        var keep = false
        defer { if !keep { unlink(temporary) } }
        // The umask may only remove bits; make the mode exact (a public file asked 0644 stays 0644).
        guard fchmod(fd, mode) == 0 else { throw closing(fd, failure("cannot set the mode of", path)) }
        let contiguous = Array(bytes)
        var offset = 0
        while offset < contiguous.count {
            let written = contiguous.withUnsafeBytes { buffer in
                Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw closing(fd, failure("cannot write", path)) }
            offset += written
        }
        guard fsync(fd) == 0 else { throw closing(fd, failure("cannot sync", path)) }
        close(fd)
        if replacing {
            guard rename(temporary, path) == 0 else { throw failure("cannot rename into", path) }
            keep = true
        } else if link(temporary, path) != 0 {
            guard errno == EEXIST else { throw failure("cannot link into", path) }
            return false
        }
        syncDirectory(directory)
        return true
    }

    /// Create `path` as an empty file with mode 0600 if it does not exist (for a database that its library opens).
    package static func createEmpty(_ path: String, mode: UInt32 = 0o600) throws(EnclaveError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd < 0 {
            guard errno == EEXIST else { throw failure("cannot create", path) }
            return
        }
        _ = fchmod(fd, mode)
        _ = fsync(fd)
        close(fd)
    }

    /// Make `path` a private directory: created with mode 0700 (parents as needed) if missing; if it exists it must
    /// be a directory owned by this user and writable by nobody else (else a clear error naming the path and mode);
    /// a directory that others may read or enter is narrowed to 0700.
    package static func prepareDirectory(_ path: String, what: String = "directory") throws(EnclaveError) {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw failure("cannot inspect \(what)", path) }
            try createMissingDirectories(path, what: what)
            guard chmod(path, 0o700) == 0, stat(path, &info) == 0 else { throw failure("cannot secure \(what)", path) }
        }
        try checkDirectory(path, info, what: what)
        if info.st_mode & 0o077 != 0 {
            guard chmod(path, 0o700) == 0 else { throw failure("cannot narrow the mode of \(what)", path) }
        }
    }

    /// Create `path` and its missing parents with an explicit mode (`mode` for `path`, 0755 for parents), whatever
    /// the umask: `FileManager` creates parents 0777 under `umask 000`, which would let anyone swap them.
    package static func createMissingDirectories(
        _ path: String,
        mode: UInt32 = 0o700,
        what: String = "directory"
    ) throws(EnclaveError) {
        var missing: [String] = []
        var current = path
        var info = stat()
        while !current.isEmpty, current != "/", stat(current, &info) != 0 {
            guard errno == ENOENT else { throw failure("cannot inspect \(what)", current) }
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for (index, directory) in missing.reversed().enumerated() {
            let last = index == missing.count - 1
            guard mkdir(directory, mode_t(last ? mode : 0o755)) == 0 || errno == EEXIST else {
                throw failure("cannot create \(what)", directory)
            }
        }
    }

    /// Refuse a directory that is not a directory, is owned by another user, or that others may write into.
    package static func checkDirectory(_ path: String, what: String = "directory") throws(EnclaveError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw failure("cannot inspect \(what)", path) }
        try checkDirectory(path, info, what: what)
    }

    private static func checkDirectory(_ path: String, _ info: stat, what: String) throws(EnclaveError) {
        let mode = info.st_mode & 0o7777
        let octal = "0" + String(mode, radix: 8)
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw .invalidConfiguration("\(what) \(path) is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw .invalidConfiguration(
                "\(what) \(path) is owned by uid \(info.st_uid), not by this user (uid \(geteuid())); refusing it"
            )
        }
        guard mode & 0o022 == 0 else {
            throw .invalidConfiguration(
                "\(what) \(path) has mode \(octal): others may write into it; refusing it (chmod 700 \(path))"
            )
        }
    }

    /// Remove temporaries left in `directory` by writers that are gone (killed mid-write): this helper's own, and
    /// names containing one of `extraMarkers` (e.g. Foundation's `.nosync` atomic-write temporaries), whatever their
    /// writer. Returns the names removed.
    @discardableResult
    package static func removeLeftovers(in directory: String, extraMarkers: [String] = []) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            var stale = extraMarkers.contains { name.contains($0) }
            if let range = name.range(of: temporaryMarker) {
                let pid = name[range.upperBound...].prefix { $0 != "." }
                if let pid = pid_t(pid), pid != getpid() {
                    stale = kill(pid, 0) != 0 && errno == ESRCH
                }
            }
            if stale, unlink(directory + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }

    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    private static func closing(_ fd: Int32, _ error: EnclaveError) -> EnclaveError {
        close(fd)
        return error
    }

    private static func failure(_ what: String, _ path: String) -> EnclaveError {
        .invalidConfiguration("\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
