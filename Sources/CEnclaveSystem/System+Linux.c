#define _GNU_SOURCE
#include "CEnclaveSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <time.h>
#include <stdio.h>
#include <ucontext.h>

#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#endif

int ek_errno(void) { return errno; }

static char ek_maps[16384];
static size_t ek_maps_length;

static void ek_write_all(const char *text, size_t length) {
    while (length > 0) {
        ssize_t written = write(2, text, length);
        if (written <= 0) return;
        text += written;
        length -= (size_t)written;
    }
}

static void ek_crash_handler(int signal_number, siginfo_t *info, void *context) {
    char line[96];
    unsigned long pc = 0;
#if defined(__x86_64__)
    pc = (unsigned long)((ucontext_t *)context)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    pc = (unsigned long)((ucontext_t *)context)->uc_mcontext.pc;
#endif
    (void)info;
    int length = snprintf(line, sizeof(line), "\nenclave crashed: signal %d at pc 0x%lx; executable mappings:\n",
                          signal_number, pc);
    if (length > 0) ek_write_all(line, (size_t)length);
    ek_write_all(ek_maps, ek_maps_length);
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

void ek_install_crash_reporter(void) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buffer[65536];
        ssize_t total = 0, got;
        while (total < (ssize_t)sizeof(buffer) && (got = read(fd, buffer + total, sizeof(buffer) - (size_t)total)) > 0)
            total += got;
        close(fd);
        // Keep only executable mappings.
        ssize_t start = 0;
        for (ssize_t i = 0; i < total; i++) {
            if (buffer[i] != '\n') continue;
            ssize_t lineLength = i - start + 1;
            if (lineLength > 20 && memchr(buffer + start, 'x', lineLength < 48 ? (size_t)lineLength : 48) != NULL &&
                ek_maps_length + (size_t)lineLength < sizeof(ek_maps)) {
                memcpy(ek_maps + ek_maps_length, buffer + start, (size_t)lineLength);
                ek_maps_length += (size_t)lineLength;
            }
            start = i + 1;
        }
    }
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = ek_crash_handler;
    action.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    int signals[] = {SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGTRAP};
    for (unsigned i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) sigaction(signals[i], &action, NULL);
}

void ek_tune_allocator(void) {
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

long ek_syscall3(long number, long a, long b, long c) { return syscall(number, a, b, c); }

long ek_sys_ptrace(void) { return SYS_ptrace; }

long ek_sys_mount(void) { return SYS_mount; }

long ek_sys(ek_syscall_id id) {
    switch (id) {
    case EK_SYS_TGKILL: return SYS_tgkill;
    case EK_SYS_TKILL: return SYS_tkill;
    case EK_SYS_PRLIMIT64: return SYS_prlimit64;
    case EK_SYS_NEWFSTATAT: return SYS_newfstatat;
    case EK_SYS_STATX: return SYS_statx;
    case EK_SYS_PRCTL: return SYS_prctl;
    case EK_SYS_MMAP: return SYS_mmap;
    case EK_SYS_MPROTECT: return SYS_mprotect;
    case EK_SYS_GETTID: return SYS_gettid;
    }
    return -1;
}

long ek_syscall6(long number, long a, long b, long c, long d, long e, long f) {
    return syscall(number, a, b, c, d, e, f);
}

int ek_is_overlay(int fd) {
    struct statfs system;
    return fstatfs(fd, &system) == 0 && system.f_type == 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
}

int ek_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int ek_socketpair(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }

int ek_set_socket_buffers(int fd, int bytes) {
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) != 0) return -1;
    return setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

int ek_socket_send_buffer(int fd) {
    int bytes = 0;
    socklen_t length = sizeof(bytes);
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, &length) != 0) return -1;
    return bytes;
}

int ek_close_from(int lowest) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0) return 0;
#endif
    struct rlimit limit;
    long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 1048576)
        max = (long)limit.rlim_cur;
    for (long fd = lowest; fd < max; fd++) close((int)fd);
    return 0;
}

int ek_memfd_create(const char *name) {
#ifdef __linux__
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int ek_memfd_seal(int fd) {
#ifdef F_ADD_SEALS
    return fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int ek_ring_create(const char *name, uint64_t size, void **mapping) {
#if defined(__linux__) && defined(F_ADD_SEALS)
    *mapping = NULL;
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    void *address = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *mapping = address;
    return fd;
#else
    (void)name;
    (void)size;
    *mapping = NULL;
    errno = ENOSYS;
    return -1;
#endif
}

void *ek_ring_map(int fd, uint64_t max_size, uint64_t *size) {
#if defined(__linux__) && defined(F_GET_SEALS)
    *size = 0;
    struct stat info;
    if (fstat(fd, &info) != 0) return NULL;
    int seals = fcntl(fd, F_GET_SEALS);
    // Only a memory file answers F_GET_SEALS; without F_SEAL_SHRINK the other side could cut the file under us.
    if (!S_ISREG(info.st_mode) || seals < 0 || (seals & F_SEAL_SHRINK) == 0 || info.st_size <= 0) {
        errno = ENODEV;
        return NULL;
    }
    if ((uint64_t)info.st_size > max_size) {
        errno = EFBIG;
        return NULL;
    }
    void *address = mmap(NULL, (size_t)info.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) return NULL;
    *size = (uint64_t)info.st_size;
    return address;
#else
    (void)fd;
    (void)max_size;
    *size = 0;
    errno = ENOSYS;
    return NULL;
#endif
}

int ek_ring_unmap(void *mapping, uint64_t size) { return munmap(mapping, (size_t)size); }

int ek_current_cpu(void) { return sched_getcpu(); }

int ek_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec timeout;
    struct timespec *limit = NULL;
    if (timeout_ns >= 0) {
        timeout.tv_sec = (time_t)(timeout_ns / 1000000000);
        timeout.tv_nsec = (long)(timeout_ns % 1000000000);
        limit = &timeout;
    }
    // Not FUTEX_PRIVATE_FLAG: the word is shared with the other process.
    long result = syscall(SYS_futex, word, FUTEX_WAIT, expected, limit, NULL, 0);
    return result < 0 ? -1 : 0;
}

int ek_futex_wake(uint32_t *word, int count) { return (int)syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0); }

int ek_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

int ek_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

// Report a failed step from the child to the parent over the close-on-exec pipe, then exit.
// `file` is the index of the trusted file the step failed on, or -1.
static void child_fail_file(int report_fd, const char *step_index, int file) __attribute__((noreturn));
static void child_fail_file(int report_fd, const char *step_index, int file) {
    int payload[3] = {errno, (int)(step_index[0]), file};
    ssize_t ignored = write(report_fd, payload, sizeof(payload));
    (void)ignored;
    _exit(127);
}

static void child_fail(int report_fd, const char *step_index) __attribute__((noreturn));
static void child_fail(int report_fd, const char *step_index) { child_fail_file(report_fd, step_index, -1); }

static const char *step_name(char code) {
    switch (code) {
    case 'd': return "dup2";
    case 'c': return "close fds";
    case 'r': return "setrlimit";
    case 'n': return "no_new_privs";
    case 'l': return "landlock";
    case 'm': return "trusted file";
    case 'p': return "drop capabilities";
    case 'f': return "loader seccomp filter";
    case 'x': return "execveat";
    case 's': return "setsid";
    default: return "spawn";
    }
}

// MARK: Landlock, without relying on the build machine's <linux/landlock.h> (which may predate the kernel's ABI)

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444  // the same number on every architecture
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#define EK_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define EK_LANDLOCK_RULE_PATH_BENEATH 1
#define EK_LANDLOCK_FS_EXECUTE (1ULL << 0)
#define EK_LANDLOCK_FS_WRITE_FILE (1ULL << 1)
#define EK_LANDLOCK_FS_READ_FILE (1ULL << 2)
#define EK_LANDLOCK_FS_V1 ((1ULL << 13) - 1)  // execute … make_sym: every right of ABI 1
#define EK_LANDLOCK_FS_REFER (1ULL << 13)     // ABI 2
#define EK_LANDLOCK_FS_TRUNCATE (1ULL << 14)  // ABI 3
#define EK_LANDLOCK_FS_IOCTL_DEV (1ULL << 15) // ABI 5
#define EK_LANDLOCK_NET_TCP 3ULL              // ABI 4: bind_tcp | connect_tcp
#define EK_LANDLOCK_SCOPES 3ULL               // ABI 6: abstract unix sockets | signals

struct ek_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ek_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int ek_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, EK_LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? -1 : (int)abi;
}

// Allow `access` on the file at `path` (or beneath it, for a directory). With `optional`, a missing file is no error.
// Follows symbolic links (/etc/localtime is one): for the system's own files only, never a trusted file.
static int landlock_allow(int ruleset, const char *path, uint64_t access, int optional) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) return optional && errno == ENOENT ? 0 : -1;
    struct ek_landlock_path_beneath_attr rule = {access, fd};
    long result = syscall(SYS_landlock_add_rule, ruleset, EK_LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    int saved = errno;
    close(fd);
    errno = saved;
    return result == 0 ? 0 : -1;
}

// Allow `access` on the trusted file at `path` only if it is still the file the loader measured: the final
// component is not followed (O_NOFOLLOW; an O_PATH descriptor then names the link itself), the descriptor must name
// a regular file with the measured device and inode, and the rule is made on that descriptor, so it grants the
// measured inode and nothing a symbolic link swapped in after measurement points to. Directories on the way are
// followed (the paths are the measured real paths; a directory swapped for a link leads to another inode and fails
// the comparison). A mismatch fails with ELOOP (a symbolic link) or ESTALE (another file).
static int landlock_allow_measured(int ruleset, const char *path, ek_file_identity measured, uint64_t access) {
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat status;
    int mismatch = 0;
    if (fstat(fd, &status) != 0) mismatch = errno;
    else if (S_ISLNK(status.st_mode)) mismatch = ELOOP;
    else if (!S_ISREG(status.st_mode) || (uint64_t)status.st_dev != measured.device ||
             (uint64_t)status.st_ino != measured.inode)
        mismatch = ESTALE;
    long result = -1;
    if (!mismatch) {
        struct ek_landlock_path_beneath_attr rule = {access, fd};
        result = syscall(SYS_landlock_add_rule, ruleset, EK_LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    }
    int saved = mismatch ? mismatch : errno;
    close(fd);
    errno = saved;
    return result == 0 ? 0 : -1;
}

// Confine the calling process (the child, just before it executes the image) with Landlock: every file right the
// kernel knows is handled, and only what an image needs to start is allowed — read and execute its interpreter and
// libraries (each only while it is the file that was measured, see landlock_allow_measured); read the loader's
// cache, /etc/localtime, files under /proc and /sys/devices/system/cpu, /dev/urandom; read and write /dev/null.
// Nothing else, no directory listing, nothing created. No TCP, no abstract unix sockets or signals outside the domain
// (ABI 4 and 6). Requires no_new_privs. Raw syscalls only. When a trusted file is not the measured one, `*bad_file`
// is its index.
static int landlock_confine(const ek_confinement *confinement, int *bad_file) {
    int abi = confinement->landlock_abi;
    struct ek_landlock_ruleset_attr attributes = {EK_LANDLOCK_FS_V1, 0, 0};
    if (abi >= 2) attributes.handled_access_fs |= EK_LANDLOCK_FS_REFER;
    if (abi >= 3) attributes.handled_access_fs |= EK_LANDLOCK_FS_TRUNCATE;
    if (abi >= 5) attributes.handled_access_fs |= EK_LANDLOCK_FS_IOCTL_DEV;
    if (abi >= 4) attributes.handled_access_net = EK_LANDLOCK_NET_TCP;
    if (abi >= 6) attributes.scoped = EK_LANDLOCK_SCOPES;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attributes, sizeof(attributes), 0);
    if (ruleset < 0) return -1;
    int failed = 0;
    const uint64_t read_execute = EK_LANDLOCK_FS_READ_FILE | EK_LANDLOCK_FS_EXECUTE;
    if (confinement->trusted_file_count > 0 && confinement->trusted_identities == NULL) {
        errno = EINVAL;
        failed = 1;
    }
    for (int i = 0; i < confinement->trusted_file_count && !failed; i++) {
        const char *path = confinement->trusted_files[i];
        failed = landlock_allow_measured(ruleset, path, confinement->trusted_identities[i], read_execute) != 0;
        if (failed) *bad_file = i;
    }
    if (!failed) failed = landlock_allow(ruleset, "/etc/ld.so.cache", EK_LANDLOCK_FS_READ_FILE, 1) != 0;
    if (!failed) failed = landlock_allow(ruleset, "/etc/localtime", EK_LANDLOCK_FS_READ_FILE, 1) != 0;
    // Files under /proc, not directories: the runtime reads /proc/self/maps before its filter is in place (the
    // mappings it reports to the loader), and libdispatch, when its pool starts before then, /proc/TID/stat of its
    // workers (and traps when it can't). Another process's private files there (environ, maps, mem, fd/…) need ptrace
    // access, which Landlock refuses outside the domain; what they link to is checked against these rules.
    if (!failed) failed = landlock_allow(ruleset, "/proc", EK_LANDLOCK_FS_READ_FILE, 0) != 0;
    if (!failed) failed = landlock_allow(ruleset, "/sys/devices/system/cpu", EK_LANDLOCK_FS_READ_FILE, 1) != 0;
    if (!failed) failed = landlock_allow(ruleset, "/dev/urandom", EK_LANDLOCK_FS_READ_FILE, 1) != 0;
    if (!failed)
        failed = landlock_allow(ruleset, "/dev/null", EK_LANDLOCK_FS_READ_FILE | EK_LANDLOCK_FS_WRITE_FILE, 1) != 0;
    if (!failed) failed = syscall(SYS_landlock_restrict_self, ruleset, 0) != 0;
    int saved = errno;
    close(ruleset);
    errno = saved;
    return failed ? -1 : 0;
}

// Empty the bounding, inheritable, permitted, effective and ambient capability sets, so that the image runs without
// a capability even when the host is root (execve as root would otherwise grant the whole bounding set). Without
// CAP_SETPCAP (a host that is not root) the bounding set stays, and exec grants nothing: no_new_privs ignores file
// capabilities and the ambient and inheritable sets are empty. Raw syscalls only.
static int drop_capabilities(void) {
    for (int capability = 0; capability < 64; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break;  // past the kernel's last capability
        if (errno != EPERM) return -1;
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);  // EINVAL before Linux 4.3, where there is none
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -1;
}

static int install_loader_filter(void);

ek_spawn_result ek_spawn(int image_fd, char *const argv[], const int *channel_fds, int channel_count,
                         int stderr_fd, uint64_t address_space_limit, const ek_confinement *confinement) {
    ek_spawn_result result = {-1, 0, NULL, -1};
    if (channel_count < 0 || channel_count > 8) {
        result.error = EINVAL;
        result.step = "arguments";
        return result;
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        result.error = errno;
        result.step = "pipe";
        return result;
    }
    char *const empty_environment[] = {NULL};
    pid_t pid = fork();
    if (pid < 0) {
        result.error = errno;
        result.step = "fork";
        close(report[0]);
        close(report[1]);
        return result;
    }
    if (pid == 0) {
        // Child: async-signal-safe calls only.
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (setsid() < 0) child_fail(report[1], "s");
        // Move the report pipe and the image fd out of the way of the target numbers 3…3+count-1.
        int high = 64;
        int report_fd = fcntl(report[1], F_DUPFD_CLOEXEC, high);
        if (report_fd < 0) child_fail(report[1], "d");
        int image = fcntl(image_fd, F_DUPFD_CLOEXEC, high);
        if (image < 0) child_fail(report_fd, "d");
        int moved[8];
        for (int i = 0; i < channel_count; i++) {
            moved[i] = fcntl(channel_fds[i], F_DUPFD_CLOEXEC, high);
            if (moved[i] < 0) child_fail(report_fd, "d");
        }
        int error_fd = stderr_fd >= 0 ? fcntl(stderr_fd, F_DUPFD_CLOEXEC, high) : -1;
        if (stderr_fd >= 0 && error_fd < 0) child_fail(report_fd, "d");
        for (int i = 0; i < channel_count; i++) {
            if (dup2(moved[i], 3 + i) < 0) child_fail(report_fd, "d");  // dup2 clears close-on-exec
        }
        // Standard error: the pipe the host reads and escapes, never the host's own stderr.
        if (error_fd >= 0) {
            if (dup2(error_fd, 2) < 0) child_fail(report_fd, "d");
            close(error_fd);
        }
        // Close everything except 0-2, the channels, and our two private (close-on-exec) descriptors.
        for (int fd = 3 + channel_count; fd < high; fd++) close(fd);
        for (int i = 0; i < channel_count; i++) close(moved[i]);
        int keep_low = report_fd < image ? report_fd : image;
        int keep_high = report_fd < image ? image : report_fd;
        for (int fd = high; fd < keep_high; fd++)
            if (fd != keep_low) close(fd);
        ek_close_from(keep_high + 1);
        // Standard input and output are the host's terminal: the enclave gets /dev/null-like nothing instead.
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            dup2(null_fd, 1);
            if (null_fd > 2) close(null_fd);
        }
        if (address_space_limit > 0) {
            struct rlimit limit = {address_space_limit, address_space_limit};
            if (setrlimit(RLIMIT_AS, &limit) != 0) child_fail(report_fd, "r");
        }
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(report_fd, "n");
        if (confinement == NULL) {
            errno = EINVAL;
            child_fail(report_fd, "l");
        }
        if (confinement->landlock_abi > 0) {
            int bad_file = -1;
            if (landlock_confine(confinement, &bad_file) != 0)
                child_fail_file(report_fd, bad_file >= 0 ? "m" : "l", bad_file);
        }
        if (drop_capabilities() != 0) child_fail(report_fd, "p");
        if (install_loader_filter() != 0) child_fail(report_fd, "f");
        syscall(SYS_execveat, image, "", argv, empty_environment, AT_EMPTY_PATH);
        child_fail(report_fd, "x");
    }
    close(report[1]);
    int payload[3] = {0, 0, -1};
    ssize_t got;
    do {
        got = read(report[0], payload, sizeof(payload));
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof(payload)) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        result.error = payload[0];
        result.step = step_name((char)payload[1]);
        result.trusted_file = payload[2];
        return result;
    }
    result.pid = pid;
    return result;
}

#ifdef __linux__

#if defined(__x86_64__)
#define EK_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define EK_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

// How every filter starts: any other ABI (another architecture, or x32 on x86_64) kills the process, then the
// syscall number is loaded for the rules that follow.
#if defined(__x86_64__)
#define EK_FILTER_PROLOGUE                                                                                       \
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),                                     \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, EK_AUDIT_ARCH, 1, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),                                   \
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#else
#define EK_FILTER_PROLOGUE                                                                                       \
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),                                     \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, EK_AUDIT_ARCH, 1, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), \
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#endif
#define EK_ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define EK_ERRNO(nr, err)                                                                                        \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & 0xffff))
// Argument words: seccomp sees 64-bit arguments; the kernel reads int arguments (pids, flags, options) from the low
// 32 bits only, so those are what the filter compares (little-endian: the low word comes first).
#define EK_ARG_LOW(i) (offsetof(struct seccomp_data, args[i]))
#define EK_ARG_HIGH(i) (offsetof(struct seccomp_data, args[i]) + 4)
#define EK_LOAD(offset) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (offset))
#define EK_RETURN(action) BPF_STMT(BPF_RET | BPF_K, (action))
#define EK_EPERM (SECCOMP_RET_ERRNO | EPERM)
// `nr` is allowed only when the low word of argument `arg` equals `value`; otherwise EPERM. Five instructions.
#define EK_ALLOW_IF_ARG(nr, arg, value)                                                                          \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), EK_LOAD(EK_ARG_LOW(arg)),                                   \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), 0, 1), EK_RETURN(SECCOMP_RET_ALLOW), EK_RETURN(EK_EPERM)
// `nr` (mmap or mprotect, protection in argument 2) is refused when it asks for executable memory: the code that
// runs is the code that was measured and mapped at start, so no page becomes executable once the filter is in place
// (which also rules out pages writable and executable at once).
#define EK_ALLOW_UNLESS_EXEC(nr)                                                                                 \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), EK_LOAD(EK_ARG_LOW(2)),                                     \
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1), EK_RETURN(EK_EPERM), EK_RETURN(SECCOMP_RET_ALLOW)

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1  // si_code of a SIGSYS raised by SECCOMP_RET_TRAP
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

/// SIGSYS from a trapped syscall: `newfstatat(fd, "", buf, AT_EMPTY_PATH)` — how glibc implements `fstat` — is
/// answered with `fstat(fd, buf)`; a path is refused with EPERM. The path is read here, in the process, which the
/// filter cannot do; the kernel never sees it, so changing it after the check changes nothing.
static void ek_sigsys_handler(int signal_number, siginfo_t *info, void *context) {
    (void)signal_number;
    if (info->si_code != SYS_SECCOMP) return;  // not a trap (someone sent SIGSYS): leave the registers alone
    int saved_errno = errno;
    long result = -ENOSYS;
#if defined(__x86_64__)
    greg_t *registers = ((ucontext_t *)context)->uc_mcontext.gregs;
    long fd = registers[REG_RDI], path = registers[REG_RSI], buffer = registers[REG_RDX];
#elif defined(__aarch64__)
    unsigned long long *registers = ((ucontext_t *)context)->uc_mcontext.regs;
    long fd = (long)registers[0], path = (long)registers[1], buffer = (long)registers[2];
#endif
    if (info->si_syscall == SYS_newfstatat) {
        result = -EPERM;
        if (path != 0 && *(const char *)path == '\0') {
            long status = syscall(SYS_fstat, (long)(int)fd, buffer);
            result = status < 0 ? -errno : status;
        }
    }
#if defined(__x86_64__)
    registers[REG_RAX] = result;
#elif defined(__aarch64__)
    registers[0] = (unsigned long long)result;
#endif
    errno = saved_errno;
}

// The loader's own filter, installed in the child before exec (filters stack: the runtime's comes on top). It covers
// what Landlock leaves open to an image that never installs the runtime's filter: no socket at all (Landlock
// confines TCP only, not UDP or connecting to a named UNIX socket such as a container daemon's), no io_uring (which
// could create one). The runtime's filter refuses both as well, so an honest enclave sees no difference.
static int install_loader_filter(void) {
#ifndef EK_AUDIT_ARCH
    errno = ENOSYS;
    return -1;
#else
    struct sock_filter filter[] = {
        EK_FILTER_PROLOGUE,
        EK_ERRNO(SYS_socket, EPERM),
        EK_ERRNO(SYS_io_uring_setup, EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0 ? 0 : -1;
#endif
}

int ek_install_seccomp(void) {
#ifndef EK_AUDIT_ARCH
    errno = ENOSYS;
    return -1;
#else
    // The enclave is never forked after this: its own pid is a constant of the filter.
    const uint32_t self = (uint32_t)getpid();
    struct sigaction trap;
    memset(&trap, 0, sizeof(trap));
    trap.sa_sigaction = ek_sigsys_handler;
    trap.sa_flags = SA_SIGINFO;
    sigemptyset(&trap.sa_mask);
    if (sigaction(SIGSYS, &trap, NULL) != 0) return -1;
    struct sock_filter filter[] = {
        // Refuse any other ABI (e.g. 32-bit syscalls on x86_64).
        EK_FILTER_PROLOGUE,
        // clone: threads only (CLONE_THREAD set), never a new process.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        // clone3 hides its flags behind a pointer: ENOSYS makes libc fall back to clone.
        EK_ERRNO(SYS_clone3, ENOSYS),

        // Signals to its own threads only: tgkill's thread group must be this process (the kernel then checks the
        // thread is in it); tkill names a bare thread id, which the filter cannot tie to this process.
        EK_ALLOW_IF_ARG(SYS_tgkill, 0, self),
        EK_ERRNO(SYS_tkill, EPERM),
        // Resource limits: read its own (pid 0 or its pid), never set any, never touch another process's.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prlimit64, 0, 9),
        EK_LOAD(EK_ARG_LOW(0)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, self, 0, 5),
        EK_LOAD(EK_ARG_LOW(2)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
        EK_LOAD(EK_ARG_HIGH(2)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        EK_RETURN(SECCOMP_RET_ALLOW),
        EK_RETURN(EK_EPERM),
        // stat of an open fd only. newfstatat with AT_EMPTY_PATH and a real fd goes to the SIGSYS handler, which
        // serves an empty path and refuses any other (AT_EMPTY_PATH does not stop a non-empty path from being
        // looked up, and the filter cannot read the path); every other form names a path: EPERM. statx: EPERM.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_newfstatat, 0, 6),
        EK_LOAD(EK_ARG_LOW(3)),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, 0, 3),
        EK_LOAD(EK_ARG_LOW(0)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x80000000, 1, 0),
        EK_RETURN(SECCOMP_RET_TRAP),
        EK_RETURN(EK_EPERM),
        EK_ERRNO(SYS_statx, EPERM),
        // prctl: thread names and harmless queries. Never PR_SET_DUMPABLE, PR_SET_PTRACER, PR_SET_MM, …
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prctl, 0, 8),
        EK_LOAD(EK_ARG_LOW(0)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_NAME, 5, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_GET_NAME, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_GET_DUMPABLE, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_GET_NO_NEW_PRIVS, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_VMA, 1, 0),
        EK_RETURN(EK_EPERM),
        EK_RETURN(SECCOMP_RET_ALLOW),
        // No new executable memory: nothing writable and executable, nothing made executable later.
        EK_ALLOW_UNLESS_EXEC(SYS_mmap),
        EK_ALLOW_UNLESS_EXEC(SYS_mprotect),
        EK_ERRNO(SYS_pkey_mprotect, EPERM),
        // Arguments checked above: reload the syscall number.
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),

        // Memory, threads, synchronisation, time, signals.
        EK_ALLOW(SYS_read), EK_ALLOW(SYS_write), EK_ALLOW(SYS_readv), EK_ALLOW(SYS_writev),
        EK_ALLOW(SYS_recvmsg), EK_ALLOW(SYS_sendmsg), EK_ALLOW(SYS_recvfrom), EK_ALLOW(SYS_sendto),
        EK_ALLOW(SYS_close), EK_ALLOW(SYS_lseek), EK_ALLOW(SYS_fstat), EK_ALLOW(SYS_fcntl), EK_ALLOW(SYS_shutdown),
        EK_ALLOW(SYS_munmap), EK_ALLOW(SYS_mremap),
        EK_ALLOW(SYS_madvise), EK_ALLOW(SYS_brk), EK_ALLOW(SYS_membarrier),
        EK_ALLOW(SYS_futex), EK_ALLOW(SYS_set_robust_list), EK_ALLOW(SYS_get_robust_list), EK_ALLOW(SYS_rseq),
        EK_ALLOW(SYS_set_tid_address), EK_ALLOW(SYS_gettid), EK_ALLOW(SYS_getpid), EK_ALLOW(SYS_getppid),
        EK_ALLOW(SYS_getuid), EK_ALLOW(SYS_geteuid), EK_ALLOW(SYS_getgid), EK_ALLOW(SYS_getegid),
        EK_ALLOW(SYS_sched_yield), EK_ALLOW(SYS_sched_getaffinity), EK_ALLOW(SYS_getcpu), EK_ALLOW(SYS_getrandom),
        EK_ALLOW(SYS_clock_gettime), EK_ALLOW(SYS_clock_getres), EK_ALLOW(SYS_clock_nanosleep),
        EK_ALLOW(SYS_nanosleep), EK_ALLOW(SYS_gettimeofday), EK_ALLOW(SYS_getrlimit),
        EK_ALLOW(SYS_getrusage), EK_ALLOW(SYS_uname), EK_ALLOW(SYS_sysinfo),
        EK_ALLOW(SYS_rt_sigaction), EK_ALLOW(SYS_rt_sigprocmask), EK_ALLOW(SYS_rt_sigreturn),
        EK_ALLOW(SYS_sigaltstack), EK_ALLOW(SYS_rt_sigsuspend), EK_ALLOW(SYS_rt_sigtimedwait),
        EK_ALLOW(SYS_exit), EK_ALLOW(SYS_exit_group),
        // A timed wait interrupted by a stop (SIGSTOP, then SIGCONT) resumes through restart_syscall.
        EK_ALLOW(SYS_restart_syscall),
        EK_ALLOW(SYS_ppoll), EK_ALLOW(SYS_epoll_create1), EK_ALLOW(SYS_epoll_ctl), EK_ALLOW(SYS_epoll_pwait),
        EK_ALLOW(SYS_eventfd2), EK_ALLOW(SYS_timerfd_create), EK_ALLOW(SYS_timerfd_settime), EK_ALLOW(SYS_pipe2),
        EK_ALLOW(SYS_dup), EK_ALLOW(SYS_dup3), EK_ALLOW(SYS_getcwd),
        EK_ALLOW(SYS_getpriority), EK_ALLOW(SYS_sched_getparam), EK_ALLOW(SYS_sched_getscheduler),
        // Dispatch raises its threads' priority for QoS and carries on when refused.
        EK_ERRNO(SYS_setpriority, EPERM), EK_ERRNO(SYS_sched_setscheduler, EPERM), EK_ERRNO(SYS_sched_setparam, EPERM),
#if defined(__x86_64__)
        EK_ALLOW(SYS_poll), EK_ALLOW(SYS_epoll_wait), EK_ALLOW(SYS_arch_prctl), EK_ALLOW(SYS_time),
        EK_ALLOW(SYS_eventfd), EK_ALLOW(SYS_pipe), EK_ALLOW(SYS_dup2),
#endif

        // File system, network, process creation and tracing: a clean failure, never a crash. (Dispatch's worker
        // monitor would open /proc/TID/stat and trap on the refusal; the runtime keeps Dispatch's pool idle so that
        // it never does.)
#if defined(__x86_64__)
        EK_ERRNO(SYS_open, EPERM), EK_ERRNO(SYS_creat, EPERM), EK_ERRNO(SYS_stat, EPERM),
        EK_ERRNO(SYS_lstat, EPERM), EK_ERRNO(SYS_access, EPERM), EK_ERRNO(SYS_readlink, EPERM),
        EK_ERRNO(SYS_fork, EPERM), EK_ERRNO(SYS_vfork, EPERM), EK_ERRNO(SYS_mkdir, EPERM),
        EK_ERRNO(SYS_unlink, EPERM), EK_ERRNO(SYS_rename, EPERM),
#endif
        EK_ERRNO(SYS_openat, EPERM), EK_ERRNO(SYS_openat2, EPERM), EK_ERRNO(SYS_faccessat, EPERM),
        EK_ERRNO(SYS_faccessat2, EPERM), EK_ERRNO(SYS_readlinkat, EPERM), EK_ERRNO(SYS_mkdirat, EPERM),
        EK_ERRNO(SYS_unlinkat, EPERM), EK_ERRNO(SYS_renameat2, EPERM), EK_ERRNO(SYS_ioctl, EPERM),
        EK_ERRNO(SYS_socket, EPERM), EK_ERRNO(SYS_socketpair, EPERM), EK_ERRNO(SYS_connect, EPERM),
        EK_ERRNO(SYS_bind, EPERM), EK_ERRNO(SYS_listen, EPERM), EK_ERRNO(SYS_accept4, EPERM),
        EK_ERRNO(SYS_execve, EPERM), EK_ERRNO(SYS_execveat, EPERM), EK_ERRNO(SYS_ptrace, EPERM),
        EK_ERRNO(SYS_process_vm_readv, EPERM), EK_ERRNO(SYS_process_vm_writev, EPERM),
        EK_ERRNO(SYS_kill, EPERM), EK_ERRNO(SYS_memfd_create, EPERM), EK_ERRNO(SYS_sched_setaffinity, EPERM),
        EK_ERRNO(SYS_statfs, EPERM), EK_ERRNO(SYS_fstatfs, EPERM), EK_ERRNO(SYS_getdents64, EPERM),

        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog program = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) != 0) return -1;
    return 0;
#endif
}

#else

static int install_loader_filter(void) {
    errno = ENOSYS;
    return -1;
}

int ek_install_seccomp(void) {
    errno = ENOSYS;
    return -1;
}

#endif
