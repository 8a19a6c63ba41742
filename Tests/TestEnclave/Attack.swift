// What a compromised enclave would try against the host and against its own confinement.
import CEnclaveSystem

#if canImport(Glibc)
import Glibc
#endif

enum Attack {
    static let atFDCWD = -100
    static let atEmptyPath = 0x1000
    static let prSetDumpable = 4
    static let prSetName = 15

    /// Run `operation`; 0 when it succeeded, else its errno.
    static func attempt(_ operation: String, target: Int32) -> Int32 {
        errno = 0
        let pid = Int(target)
        let result: Int
        switch operation {
        case "tgkill":  // signal 0: only asks whether the signal would be allowed
            result = ek_syscall6(ek_sys(EK_SYS_TGKILL), pid, pid, 0, 0, 0, 0)
        case "tgkillSelf":
            let tid = ek_syscall6(ek_sys(EK_SYS_GETTID), 0, 0, 0, 0, 0, 0)
            result = ek_syscall6(ek_sys(EK_SYS_TGKILL), Int(getpid()), tid, 0, 0, 0, 0)
        case "tkill":
            result = ek_syscall6(ek_sys(EK_SYS_TKILL), pid, 0, 0, 0, 0, 0)
        case "prlimitRead":  // read the target's open-file limit
            var limit = rlimit()
            result = withUnsafeMutablePointer(to: &limit) { pointer in
                ek_syscall6(
                    ek_sys(EK_SYS_PRLIMIT64),
                    pid,
                    Int(RLIMIT_NOFILE.rawValue),
                    0,
                    Int(bitPattern: pointer),
                    0,
                    0
                )
            }
        case "prlimitSet":  // set the target's open-file limit to its own value
            var limit = rlimit()
            guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return errno }
            result = withUnsafeMutablePointer(to: &limit) { pointer in
                ek_syscall6(
                    ek_sys(EK_SYS_PRLIMIT64),
                    pid,
                    Int(RLIMIT_NOFILE.rawValue),
                    Int(bitPattern: pointer),
                    0,
                    0,
                    0
                )
            }
        case "getrlimit":
            var limit = rlimit()
            result = Int(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit))
        case "stat":
            var info = stat()
            result = Int(stat("/etc/hostname", &info))
        case "fstatatPathWithEmptyPathFlag":  // a path, disguised with AT_EMPTY_PATH and a real fd
            var info = stat()
            result = "/etc/hostname".withCString { path in
                withUnsafeMutablePointer(to: &info) { pointer in
                    ek_syscall6(ek_sys(EK_SYS_NEWFSTATAT), 0, address(path), address(pointer), atEmptyPath, 0, 0)
                }
            }
        case "fstatatCWDEmptyPath":
            var info = stat()
            result = "".withCString { path in
                withUnsafeMutablePointer(to: &info) { pointer in
                    ek_syscall6(ek_sys(EK_SYS_NEWFSTATAT), atFDCWD, address(path), address(pointer), atEmptyPath, 0, 0)
                }
            }
        case "statx":
            var buffer = [UInt8](repeating: 0, count: 512)
            result = "/etc/hostname".withCString { path in
                buffer.withUnsafeMutableBytes { raw in
                    ek_syscall6(ek_sys(EK_SYS_STATX), atFDCWD, address(path), 0, 0x7FF, address(raw.baseAddress), 0)
                }
            }
        case "fstat":  // the call channel, fd 3: stat of an open fd keeps working
            var info = stat()
            result = Int(fstat(3, &info))
        case "prctlDumpable":
            result = ek_syscall6(ek_sys(EK_SYS_PRCTL), prSetDumpable, 1, 0, 0, 0, 0)
        case "prctlName":
            result = "probe".withCString { name in
                ek_syscall6(ek_sys(EK_SYS_PRCTL), prSetName, address(name), 0, 0, 0, 0)
            }
        case "mmapRWX":
            result = mapped(PROT_READ | PROT_WRITE | PROT_EXEC)
        case "mmapRX":
            result = mapped(PROT_READ | PROT_EXEC)
        case "mmapRW":
            result = mapped(PROT_READ | PROT_WRITE)
        case "mprotectRWX":
            result = remapped(to: PROT_READ | PROT_WRITE | PROT_EXEC)
        case "mprotectRX":
            result = remapped(to: PROT_READ | PROT_EXEC)
        default:
            return -1
        }
        return result == -1 ? errno : 0
    }

    private static func address(_ pointer: UnsafeRawPointer?) -> Int { Int(bitPattern: pointer) }

    /// Map a page with `protection`; 0 if that worked, else -1.
    private static func mapped(_ protection: Int32) -> Int {
        let page = ek_syscall6(ek_sys(EK_SYS_MMAP), 0, 4096, Int(protection), Int(MAP_PRIVATE | MAP_ANONYMOUS), -1, 0)
        guard page != -1 else { return -1 }
        munmap(UnsafeMutableRawPointer(bitPattern: page), 4096)
        return 0
    }

    /// Map a read-write page and change it to `protection`; 0 if that worked, else -1.
    private static func remapped(to protection: Int32) -> Int {
        let page = ek_syscall6(
            ek_sys(EK_SYS_MMAP),
            0,
            4096,
            Int(PROT_READ | PROT_WRITE),
            Int(MAP_PRIVATE | MAP_ANONYMOUS),
            -1,
            0
        )
        guard page != -1 else { return -2 }
        defer { munmap(UnsafeMutableRawPointer(bitPattern: page), 4096) }
        return ek_syscall6(ek_sys(EK_SYS_MPROTECT), page, 4096, Int(protection), 0, 0, 0)
    }
}
