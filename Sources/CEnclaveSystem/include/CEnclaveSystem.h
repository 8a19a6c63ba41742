#ifndef C_ENCLAVE_SYSTEM_H
#define C_ENCLAVE_SYSTEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/// Outcome of `ek_spawn`: on success `pid` is the child; otherwise `error` is the errno of the failed step and
/// `step` names it (a static string). When the step is "trusted file", `trusted_file` is the index of the trusted
/// file that was no longer the measured one (`error` ELOOP: now a symbolic link; ESTALE: another file; else why it
/// could not be opened); otherwise -1.
typedef struct ek_spawn_result {
    pid_t pid;
    int error;
    const char *step;
    int trusted_file;
} ek_spawn_result;

/// Which file a trusted path named when the loader measured it: `st_dev` and `st_ino` as `fstat` gave them.
typedef struct ek_file_identity {
    uint64_t device;
    uint64_t inode;
} ek_file_identity;

/// How `ek_spawn` confines the enclave's process before it executes the image.
typedef struct ek_confinement {
    /// The files the image maps (its interpreter and shared libraries, as measured, symbolic links resolved):
    /// readable and executable, each only while the path still names the measured file — a regular file, not a
    /// symbolic link, with the device and inode in `trusted_identities` — or the spawn fails.
    const char *const *trusted_files;
    /// One identity per trusted file, in the same order.
    const ek_file_identity *trusted_identities;
    int trusted_file_count;
    /// The Landlock ABI version to confine with (``ek_landlock_abi``); 0 runs the image without Landlock, which only
    /// the host's explicit opt-out asks for.
    int landlock_abi;
} ek_confinement;

/// The kernel's Landlock ABI version (1 or more), or -1 with errno (ENOSYS: not built in or blocked; EOPNOTSUPP:
/// built in but not enabled at boot).
int ek_landlock_abi(void);

/// Fork a child that becomes the enclave: it keeps only `channel_fds` (renumbered to 3, 4, …) and, as its fd 2,
/// `stderr_fd` (when >= 0; else the host's stderr), resets its signal mask, starts a new session, sets
/// `no_new_privs` and the address-space limit, confines itself with Landlock as `confinement` says (it can open the
/// trusted files — the measured inodes, never what a path swapped for a symbolic link since then points to — the
/// loader's cache, `/etc/localtime`, files under `/proc` and `/sys/devices/system/cpu`, `/dev/null` and
/// `/dev/urandom`, nothing else; no TCP, no signals or abstract sockets outside), drops every capability, installs
/// the loader's seccomp filter (no `socket`, no `io_uring_setup`), and executes the sealed image behind `image_fd`
/// with an empty environment. Between fork and exec the child only makes raw syscalls. A NULL `confinement` fails.
ek_spawn_result ek_spawn(int image_fd, char *const argv[], const int *channel_fds, int channel_count,
                         int stderr_fd, uint64_t address_space_limit, const ek_confinement *confinement);

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

/// Ask for `bytes` of send and receive buffer on socket `fd` (`SO_SNDBUF`, `SO_RCVBUF`; the kernel doubles the value
/// and caps it at `net.core.wmem_max`/`rmem_max`). Returns 0 or -1 with errno.
int ek_set_socket_buffers(int fd, int bytes);

/// The send buffer socket `fd` has (`SO_SNDBUF` as the kernel reports it), or -1 with errno.
int ek_socket_send_buffer(int fd);

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

// MARK: Call benchmarks: the machine's floor, measured without any of our code on the path

/// Pin every thread of process `pid` (0: this process) to `cpu`, or let them run anywhere when `cpu` < 0. Threads
/// created later inherit their creator's affinity. Returns 0, or -1 with errno when no thread could be pinned.
int ek_pin_process(pid_t pid, int cpu);

/// Pin the calling thread to `cpu`, or let it run anywhere when `cpu` < 0. Returns 0 or -1 with errno.
int ek_pin_thread(int cpu);

/// The raw floor of a socket round trip: fork a child that echoes over an `AF_UNIX`/`SOCK_STREAM` socket pair (the
/// kind the enclave channel uses) with blocking `read`/`write` only; the calling thread runs on `cpu_a`, the child on
/// `cpu_b` (< 0: unpinned). Each of `iterations` round trips sends `request_bytes` (≥ 1) and waits for
/// `reply_bytes` (≥ 1) back; `out_ns[i]` is its latency in nanoseconds, after `warmup` untimed round trips. Both
/// sockets get `socket_buffer_bytes` of send and receive buffer as ``ek_set_socket_buffers`` sets them (≤ 0: the
/// system's default). With `spin_ns` > 0 each wait for bytes first reads with `MSG_DONTWAIT` for up to that long on
/// both sides (0: blocking reads only). The calling thread's affinity is restored. Returns 0, or -1 with errno.
int ek_bench_socketpair_floor(int iterations, int warmup, int request_bytes, int reply_bytes, int cpu_a, int cpu_b,
                              int socket_buffer_bytes, int64_t spin_ns, int64_t *out_ns);

/// The raw floor of a shared-memory handoff: fork a child; the two processes pass a sequence number back and forth
/// through a shared anonymous mapping, spinning on it (with `sched_yield` after a bounded spin, so one vCPU still
/// makes progress). With `payload_bytes` > 0 each handoff also copies that many bytes into the shared mapping and the
/// child copies them out. Same placement, timing and return convention as ``ek_bench_socketpair_floor``.
int ek_bench_shm_floor(int iterations, int warmup, int payload_bytes, int cpu_a, int cpu_b, int64_t *out_ns);

/// CPU time (user + system) process `pid` has used, in clock ticks, from `/proc/PID/stat`; -1 when unreadable.
long long ek_process_cpu_ticks(pid_t pid);

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
long ek_clock_ticks_per_second(void);

/// Context switches of every live thread of process `pid` so far, summed from `/proc/PID/task/*/status`
/// (`voluntary_ctxt_switches`, `nonvoluntary_ctxt_switches`). Returns 0, or -1 with errno when unreadable.
int ek_process_context_switches(pid_t pid, long long *voluntary, long long *involuntary);

// MARK: Switchless calls: a call ring in a memory file both processes map

/// Create a close-on-exec memory file of `size` bytes for a call ring, sealed against growing, shrinking and
/// further sealing (so that neither side can make the other's mapping fault with SIGBUS), and map it shared and
/// writable. Returns the fd and stores the mapping in `*mapping`; -1 with errno on failure.
int ek_ring_create(const char *name, uint64_t size, void **mapping);

/// Map the ring behind `fd` shared and writable when it is a memory file sealed against shrinking (its size is
/// then fixed for both sides) of at most `max_size` bytes. Returns the mapping and stores its size in `*size`;
/// NULL with errno (ENODEV: not a sealed memory file; EFBIG: too large) on failure.
void *ek_ring_map(int fd, uint64_t max_size, uint64_t *size);

/// Unmap a ring mapping.
int ek_ring_unmap(void *mapping, uint64_t size);

/// Wait while the shared 32-bit word at `word` equals `expected`, at most `timeout_ns` nanoseconds (< 0: no
/// limit). A process-shared futex (the ring is mapped in two processes). Returns 0 when woken, -1 with errno
/// (EAGAIN: the word differed; ETIMEDOUT; EINTR).
int ek_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

/// Wake up to `count` waiters on the shared word at `word`. Returns how many woke, or -1 with errno.
int ek_futex_wake(uint32_t *word, int count);

/// The CPU the calling thread runs on now (-1 if unknown): a switchless side yields instead of spinning when the
/// other side last ran on the same CPU.
int ek_current_cpu(void);

/// Atomic operations on a word of shared memory (the ring); every load and store is sequentially consistent.
static inline uint32_t ek_atomic_load32(const uint32_t *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
static inline void ek_atomic_store32(uint32_t *word, uint32_t value) {
    __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
}
static inline uint64_t ek_atomic_load64(const uint64_t *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
static inline void ek_atomic_store64(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
}
static inline uint32_t ek_atomic_add32(uint32_t *word, uint32_t value) {
    return __atomic_add_fetch(word, value, __ATOMIC_SEQ_CST);
}
/// Weaker orderings for the ring's hot path (see `SwitchlessRing`): on x86 a sequentially consistent store is an
/// `xchg` (a full barrier that waits for the store buffer to drain); a release store and every load below are plain
/// moves. Only the slot's state word publishes: its writer stores the data, length and sequence first, then the
/// state with release (or sequentially consistent, where a futex wake-up needs store-load order); its reader loads
/// the state with acquire, then the rest. The other words are relaxed: the release/acquire pair on the state orders
/// them.
static inline uint32_t ek_atomic_load32_acquire(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}
static inline void ek_atomic_store32_release(uint32_t *word, uint32_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}
static inline uint32_t ek_atomic_load32_relaxed(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}
static inline void ek_atomic_store32_relaxed(uint32_t *word, uint32_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}
static inline uint64_t ek_atomic_load64_relaxed(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}
static inline void ek_atomic_store64_relaxed(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}
/// Set `*word` from `expected` to `desired` if it holds `expected` (acquire on success, relaxed on failure): a
/// process-private claim (a switchless caller's slot), not a word of the ring.
static inline bool ek_atomic_claim32(uint32_t *word, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(word, &expected, desired, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
/// A sequentially consistent fence.
static inline void ek_atomic_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
/// A hint to the CPU that this thread is spinning.
static inline void ek_spin_pause(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
