#ifndef C_ENCLAVE_SYSTEM_H
#define C_ENCLAVE_SYSTEM_H

#include <stdint.h>
#include <sys/types.h>

/// Outcome of `ek_spawn`: on success `pid` is the child; otherwise `error` is the errno of the failed step and
/// `step` names it (a static string).
typedef struct ek_spawn_result {
    pid_t pid;
    int error;
    const char *step;
} ek_spawn_result;

/// Fork a child that becomes the enclave: it keeps only `channel_fds` (renumbered to 3, 4, …) and, as its fd 2,
/// `stderr_fd` (when >= 0; else the host's stderr), resets its signal mask, starts a new session, sets
/// `no_new_privs` and the address-space limit, and executes the sealed image behind `image_fd` with an empty
/// environment. Between fork and exec the child only makes raw syscalls.
ek_spawn_result ek_spawn(int image_fd, char *const argv[], const int *channel_fds, int channel_count,
                         int stderr_fd, uint64_t address_space_limit);

/// Create an anonymous, sealable, close-on-exec memory file. Returns the fd or -1 with errno.
int ek_memfd_create(const char *name);

/// Seal a memory file against any further change (write, grow, shrink, reseal). Returns 0 or -1 with errno.
int ek_memfd_seal(int fd);

/// Mark the calling process not dumpable (no core dumps, no ptrace attach and no /proc/PID/mem for non-root peers).
int ek_set_not_dumpable(void);

/// Set `no_new_privs` (required before an unprivileged process installs a seccomp filter).
int ek_set_no_new_privs(void);

/// Install the enclave's seccomp-BPF allowlist on every thread of the process. File, network, process-creation and
/// tracing syscalls fail with EPERM; so do signals to other processes (`tgkill` only within this thread group,
/// `tkill` never), `prlimit64` on another process or to set a limit, `stat` of a path (`fstat` of an open fd is
/// served by a SIGSYS handler this installs), `prctl` beyond thread names and queries (never `PR_SET_DUMPABLE`), and
/// any new executable memory (`mmap`/`mprotect` with `PROT_EXEC`: nothing writable and executable, nothing made
/// executable after start). Any syscall not on the allowlist kills the process with SIGSYS.
/// Returns 0 or -1 with errno.
int ek_install_seccomp(void);

/// Close every fd at or above `lowest`.
int ek_close_from(int lowest);

/// Whether the open file `fd` is on overlayfs (whose mappings show the underlying layer's device).
int ek_is_overlay(int fd);

/// Create a close-on-exec pipe: `fds[0]` reads, `fds[1]` writes.
int ek_pipe(int fds[2]);

/// Create a close-on-exec `AF_UNIX`/`SOCK_STREAM` socket pair.
int ek_socketpair(int fds[2]);

/// A raw syscall with up to three arguments (sandbox tests use it to attempt forbidden calls).
long ek_syscall3(long number, long a, long b, long c);

/// Syscall numbers of this architecture the sandbox tests need.
long ek_sys_ptrace(void);
long ek_sys_mount(void);

/// Syscalls the sandbox tests attempt by number (see ``ek_sys``).
typedef enum ek_syscall_id {
    EK_SYS_TGKILL,
    EK_SYS_TKILL,
    EK_SYS_PRLIMIT64,
    EK_SYS_NEWFSTATAT,
    EK_SYS_STATX,
    EK_SYS_PRCTL,
    EK_SYS_MMAP,
    EK_SYS_MPROTECT,
    EK_SYS_GETTID,
} ek_syscall_id;

/// This architecture's number for `id`.
long ek_sys(ek_syscall_id id);

/// A raw syscall with up to six arguments; -1 with errno on failure.
long ek_syscall6(long number, long a, long b, long c, long d, long e, long f);

/// Serve allocations below 32 MiB from the heap and keep up to 64 MiB of freed heap, instead of glibc's
/// adaptive mmap threshold: large messages then reuse warm memory rather than fault in fresh pages each time.
void ek_tune_allocator(void);

/// On SIGILL, SIGSEGV, SIGBUS, SIGFPE or SIGTRAP, write the signal, the faulting instruction address and the
/// executable mappings (read now, while files can still be opened) to stderr, then die of the signal. Writes only.
void ek_install_crash_reporter(void);

/// Read the process-wide `errno`.
int ek_errno(void);

#endif
