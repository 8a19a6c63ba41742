internal import CEnclaveSystem
internal import EnclaveCore

#if canImport(Glibc)
internal import Glibc
#endif

/// Process-level operations of the loader: sealed image memory files, socket pairs, spawn, reaping.
enum Spawn {
    /// Copy `bytes` into a new memory file and seal it against any change. Returns the fd.
    static func sealedMemoryFile(_ bytes: [UInt8], name: String) throws(EnclaveError) -> Int32 {
        let fd = ek_memfd_create(name)
        guard fd >= 0 else { throw .launchFailed("memfd_create failed (errno \(ek_errno()))") }
        var offset = 0
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
        guard ok, ek_memfd_seal(fd) == 0 else {
            let code = ek_errno()
            close(fd)
            throw .launchFailed("could not write and seal the image memory file (errno \(code))")
        }
        return fd
    }

    /// A close-on-exec socket pair; with `bufferBytes`, both ends ask for that much send and receive buffer.
    static func socketPair(bufferBytes: Int? = nil) throws(EnclaveError) -> (host: Int32, enclave: Int32) {
        var fds: [Int32] = [-1, -1]
        guard ek_socketpair(&fds) == 0 else { throw .launchFailed("socketpair failed (errno \(ek_errno()))") }
        if let bufferBytes {
            let size = Int32(clamping: bufferBytes)
            guard ek_set_socket_buffers(fds[0], size) == 0, ek_set_socket_buffers(fds[1], size) == 0 else {
                let code = ek_errno()
                close(fds[0])
                close(fds[1])
                throw .launchFailed("could not size the channel's socket buffers (errno \(code))")
            }
        }
        return (fds[0], fds[1])
    }

    /// A close-on-exec pipe: (read end, write end).
    static func pipe() throws(EnclaveError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard ek_pipe(&fds) == 0 else { throw .launchFailed("pipe2 failed (errno \(ek_errno()))") }
        return (fds[0], fds[1])
    }

    /// Start the enclave process from the sealed image with `channels` as its fds 3, 4, … and `standardError` as
    /// its fd 2, confined to `trustedFiles` (the measured interpreter and libraries, each with the identity it was
    /// measured with) as `Confinement` says: the child grants each file only while its path still names that
    /// regular file, not a symbolic link swapped in since.
    ///
    /// - Throws: `EnclaveError` `measurementMismatch` when a trusted file is no longer the file that was measured
    ///   (replaced, or made a symbolic link), `sandboxFailed` when the kernel has no Landlock and the host did not opt
    ///   out (or the child could not confine itself), `launchFailed` for any other failed step.
    static func launch(
        imageFD: Int32,
        arguments: [String],
        channels: [Int32],
        standardError: Int32,
        memoryLimit: UInt64,
        trustedFiles: [(path: String, identity: FileIdentity)],
        allowUnconfined: Bool
    ) throws(EnclaveError)
        -> Int32
    {
        let landlockABI = try Confinement.landlockABI(allowUnconfined: allowUnconfined)
        var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cStrings.append(nil)
        let files: [UnsafePointer<CChar>?] = trustedFiles.map { UnsafePointer(strdup($0.path)) }
        let identities = trustedFiles.map {
            ek_file_identity(device: $0.identity.statDevice, inode: $0.identity.inode)
        }
        defer {
            for pointer in cStrings { free(pointer) }
            for pointer in files { free(UnsafeMutablePointer(mutating: pointer)) }
        }
        var descriptors = channels
        let result = files.withUnsafeBufferPointer { files in
            identities.withUnsafeBufferPointer { identities in
                var confinement = ek_confinement(
                    trusted_files: files.baseAddress,
                    trusted_identities: identities.baseAddress,
                    trusted_file_count: Int32(files.count),
                    landlock_abi: landlockABI
                )
                return cStrings.withUnsafeMutableBufferPointer { argv in
                    ek_spawn(
                        imageFD,
                        argv.baseAddress,
                        &descriptors,
                        Int32(descriptors.count),
                        standardError,
                        memoryLimit,
                        &confinement
                    )
                }
            }
        }
        guard result.pid > 0 else {
            let step = result.step.map { String(cString: $0) } ?? "spawn"
            if step == "trusted file" {
                let index = Int(result.trusted_file)
                let path = trustedFiles.indices.contains(index) ? trustedFiles[index].path : "a trusted file"
                let what: String
                switch result.error {
                case ELOOP: what = "it is now a symbolic link"
                case ESTALE: what = "it is now another file (device or inode differs)"
                default: what = "it cannot be opened: \(String(cString: strerror(result.error)))"
                }
                throw .measurementMismatch(
                    "\(path) is no longer the file the loader measured (\(what)): it changed between measurement and "
                        + "launch; refusing to start the enclave"
                )
            }
            let reason = "\(step) failed: \(String(cString: strerror(result.error)))"
            guard step != "landlock" else { throw .sandboxFailed("could not confine the enclave's process: \(reason)") }
            throw .launchFailed(reason)
        }
        if landlockABI == 0 {
            let warning = Array(Confinement.unconfinedWarning(pid: result.pid, name: arguments.first ?? "?").utf8)
            _ = warning.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        return result.pid
    }

    /// Wait for `pid` to exit, killing it after `grace` seconds; returns how it ended, in words.
    static func reap(_ pid: Int32, grace: Double) -> String {
        var status: Int32 = 0
        let deadline = monotonicSeconds() + grace
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return describe(status) }
            if result < 0 && errno != EINTR { return "exit status unavailable" }
            if monotonicSeconds() > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return describe(status) + " (killed after the channel closed)"
            }
            usleep(2_000)
        }
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7F
        if signal == 0 { return "exited with status \((status >> 8) & 0xFF)" }
        let names: [Int32: String] = [
            SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGILL: "SIGILL (trap)", SIGTRAP: "SIGTRAP",
            SIGABRT: "SIGABRT", SIGSYS: "SIGSYS (seccomp violation)", SIGBUS: "SIGBUS", SIGTERM: "SIGTERM",
        ]
        return "killed by signal \(signal) \(names[signal] ?? "")".trimmingCharacters(in: .whitespaces)
    }

    static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func closeFD(_ fd: Int32) { close(fd) }
}
