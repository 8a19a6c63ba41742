#define _GNU_SOURCE
#include "CEnclaveSystem.h"

// The floor of the call benchmarks: a raw socket round trip and a raw shared-memory handoff between two processes,
// written in C with blocking syscalls only, so nothing of EnclaveKit (no Swift concurrency, no framing) is on the path.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ek_set_affinity(pid_t tid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        long count = sysconf(_SC_NPROCESSORS_CONF);
        for (long i = 0; i < count && i < CPU_SETSIZE; i++) CPU_SET((int)i, &set);
    } else {
        if (cpu >= CPU_SETSIZE) {
            errno = EINVAL;
            return -1;
        }
        CPU_SET(cpu, &set);
    }
    return sched_setaffinity(tid, sizeof(set), &set);
}

int ek_pin_thread(int cpu) { return ek_set_affinity(0, cpu); }

int ek_pin_process(pid_t pid, int cpu) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid > 0 ? (int)pid : (int)getpid());
    // Twice: a thread created while the first pass runs may have copied its creator's old mask.
    int pinned = 0, error = ESRCH;
    for (int pass = 0; pass < 2; pass++) {
        DIR *tasks = opendir(path);
        if (tasks == NULL) return -1;
        struct dirent *entry;
        while ((entry = readdir(tasks)) != NULL) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
            pid_t tid = (pid_t)atoi(entry->d_name);
            if (ek_set_affinity(tid, cpu) == 0) {
                pinned++;
            } else {
                error = errno;
            }
        }
        closedir(tasks);
    }
    if (pinned == 0) {
        errno = error;
        return -1;
    }
    return 0;
}

static int64_t ek_now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int ek_read_exact(int fd, char *buffer, size_t count) {
    size_t done = 0;
    while (done < count) {
        ssize_t got = read(fd, buffer + done, count - done);
        if (got == 0) return -1;
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

/// ``ek_read_exact``, but each wait for bytes first reads with MSG_DONTWAIT for up to `spin_ns` (0: blocks at once).
static int ek_read_exact_spinning(int fd, char *buffer, size_t count, int64_t spin_ns) {
    if (spin_ns <= 0) return ek_read_exact(fd, buffer, count);
    size_t done = 0;
    while (done < count) {
        int64_t deadline = ek_now_ns() + spin_ns;
        ssize_t got;
        for (;;) {
            got = recv(fd, buffer + done, count - done, MSG_DONTWAIT);
            if (got >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
            if (ek_now_ns() >= deadline) {
                got = read(fd, buffer + done, count - done);
                break;
            }
        }
        if (got == 0) return -1;
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

static int ek_write_exact(int fd, const char *buffer, size_t count) {
    size_t done = 0;
    while (done < count) {
        ssize_t put = send(fd, buffer + done, count - done, MSG_NOSIGNAL);
        if (put < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)put;
    }
    return 0;
}

/// Save the calling thread's affinity, pin it to `cpu` (when >= 0).
static int ek_pin_saving(int cpu, cpu_set_t *saved) {
    if (sched_getaffinity(0, sizeof(*saved), saved) != 0) return -1;
    if (cpu >= 0 && ek_set_affinity(0, cpu) != 0) return -1;
    return 0;
}

static int ek_wait_child(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int ek_bench_socketpair_floor(int iterations, int warmup, int request_bytes, int reply_bytes, int cpu_a, int cpu_b,
                              int socket_buffer_bytes, int64_t spin_ns, int64_t *out_ns) {
    if (iterations < 1 || warmup < 0 || request_bytes < 1 || reply_bytes < 1 || out_ns == NULL) {
        errno = EINVAL;
        return -1;
    }
    size_t largest = (size_t)(request_bytes > reply_bytes ? request_bytes : reply_bytes);
    char *buffer = malloc(largest);
    if (buffer == NULL) return -1;
    memset(buffer, 0x5a, largest);
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        free(buffer);
        return -1;
    }
    cpu_set_t saved;
    if ((socket_buffer_bytes > 0 && (ek_set_socket_buffers(fds[0], socket_buffer_bytes) != 0 ||
                                     ek_set_socket_buffers(fds[1], socket_buffer_bytes) != 0)) ||
        ek_pin_saving(cpu_a, &saved) != 0) {
        close(fds[0]);
        close(fds[1]);
        free(buffer);
        return -1;
    }
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        sched_setaffinity(0, sizeof(saved), &saved);
        close(fds[0]);
        close(fds[1]);
        free(buffer);
        errno = error;
        return -1;
    }
    if (child == 0) {
        // The echoing child: raw syscalls only (the parent is multi-threaded).
        close(fds[0]);
        if (cpu_b >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu_b, &set);
            sched_setaffinity(0, sizeof(set), &set);
        } else {
            sched_setaffinity(0, sizeof(saved), &saved);
        }
        for (;;) {
            if (ek_read_exact_spinning(fds[1], buffer, (size_t)request_bytes, spin_ns) != 0) _exit(0);
            if (ek_write_exact(fds[1], buffer, (size_t)reply_bytes) != 0) _exit(1);
        }
    }
    close(fds[1]);
    int failed = 0;
    for (int i = -warmup; i < iterations && !failed; i++) {
        int64_t start = ek_now_ns();
        if (ek_write_exact(fds[0], buffer, (size_t)request_bytes) != 0 ||
            ek_read_exact_spinning(fds[0], buffer, (size_t)reply_bytes, spin_ns) != 0) {
            failed = 1;
            break;
        }
        if (i >= 0) out_ns[i] = ek_now_ns() - start;
    }
    int error = errno;
    close(fds[0]);  // the child sees EOF and exits
    if (ek_wait_child(child) != 0 && !failed) {
        failed = 1;
        error = ECHILD;
    }
    sched_setaffinity(0, sizeof(saved), &saved);
    free(buffer);
    if (failed) {
        errno = error;
        return -1;
    }
    return 0;
}

/// The shared page of the handoff floor: the request and reply sequence numbers on separate cache lines.
struct ek_handoff {
    _Alignas(64) _Atomic uint64_t request;
    _Alignas(64) _Atomic uint64_t reply;
    _Alignas(64) char payload[];
};

static inline void ek_cpu_relax(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Wait until `*word` equals `value`: spin, then yield the CPU so a peer on the same vCPU can run.
static void ek_await_value(_Atomic uint64_t *word, uint64_t value, unsigned spin_limit) {
    unsigned spins = 0;
    while (atomic_load_explicit(word, memory_order_acquire) != value) {
        if (++spins < spin_limit) {
            ek_cpu_relax();
        } else {
            sched_yield();
        }
    }
}

int ek_bench_shm_floor(int iterations, int warmup, int payload_bytes, int cpu_a, int cpu_b, int64_t *out_ns) {
    if (iterations < 1 || warmup < 0 || payload_bytes < 0 || payload_bytes > (64 << 20) || out_ns == NULL) {
        errno = EINVAL;
        return -1;
    }
    size_t size = sizeof(struct ek_handoff) + (size_t)payload_bytes;
    struct ek_handoff *shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return -1;
    char *local = payload_bytes > 0 ? malloc((size_t)payload_bytes) : NULL;
    if (payload_bytes > 0 && local == NULL) {
        munmap(shared, size);
        return -1;
    }
    if (local) memset(local, 0xa5, (size_t)payload_bytes);
    atomic_store(&shared->request, 0);
    atomic_store(&shared->reply, 0);
    // Two spinners on one vCPU only make progress when one yields: yield at once there.
    unsigned spin_limit = cpu_a >= 0 && cpu_a == cpu_b ? 1 : 4096;
    cpu_set_t saved;
    if (ek_pin_saving(cpu_a, &saved) != 0) {
        free(local);
        munmap(shared, size);
        return -1;
    }
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        sched_setaffinity(0, sizeof(saved), &saved);
        free(local);
        munmap(shared, size);
        errno = error;
        return -1;
    }
    if (child == 0) {
        if (cpu_b >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu_b, &set);
            sched_setaffinity(0, sizeof(set), &set);
        } else {
            sched_setaffinity(0, sizeof(saved), &saved);
        }
        // Stop when the parent posts the all-ones sequence number.
        for (uint64_t expected = 1;; expected++) {
            unsigned spins = 0;
            uint64_t seen;
            while ((seen = atomic_load_explicit(&shared->request, memory_order_acquire)) < expected) {
                if (++spins < spin_limit) {
                    ek_cpu_relax();
                } else {
                    sched_yield();
                }
            }
            if (seen == UINT64_MAX) _exit(0);
            if (local) memcpy(local, shared->payload, (size_t)payload_bytes);
            atomic_store_explicit(&shared->reply, seen, memory_order_release);
        }
    }
    uint64_t sequence = 0;
    for (int i = -warmup; i < iterations; i++) {
        int64_t start = ek_now_ns();
        sequence++;
        if (local) memcpy(shared->payload, local, (size_t)payload_bytes);
        atomic_store_explicit(&shared->request, sequence, memory_order_release);
        ek_await_value(&shared->reply, sequence, spin_limit);
        if (i >= 0) out_ns[i] = ek_now_ns() - start;
    }
    atomic_store_explicit(&shared->request, UINT64_MAX, memory_order_release);
    int status = ek_wait_child(child);
    sched_setaffinity(0, sizeof(saved), &saved);
    free(local);
    munmap(shared, size);
    if (status != 0) {
        errno = ECHILD;
        return -1;
    }
    return 0;
}

long long ek_process_cpu_ticks(pid_t pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[1024];
    ssize_t got = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (got <= 0) return -1;
    text[got] = '\0';
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    char *cursor = strrchr(text, ')');
    if (cursor == NULL) return -1;
    cursor++;
    // Fields after the name: state(3) … utime(14) stime(15); skip 11 fields to reach utime.
    unsigned long long utime = 0, stime = 0;
    int field = 2;
    char *save = NULL;
    char *token = strtok_r(cursor, " ", &save);
    while (token != NULL) {
        field++;
        if (field == 14) utime = strtoull(token, NULL, 10);
        if (field == 15) {
            stime = strtoull(token, NULL, 10);
            return (long long)(utime + stime);
        }
        token = strtok_r(NULL, " ", &save);
    }
    return -1;
}

long ek_clock_ticks_per_second(void) { return sysconf(_SC_CLK_TCK); }

int ek_process_context_switches(pid_t pid, long long *voluntary, long long *involuntary) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (tasks == NULL) return -1;
    long long sums[2] = {0, 0};
    int threads = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        char status[96];
        snprintf(status, sizeof(status), "/proc/%d/task/%.20s/status", (int)pid, entry->d_name);
        int fd = open(status, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;  // the thread ended meanwhile
        char text[4096];
        ssize_t got = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (got <= 0) continue;
        text[got] = '\0';
        const char *keys[2] = {"\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:"};
        for (int i = 0; i < 2; i++) {
            const char *found = strstr(text, keys[i]);
            if (found != NULL) sums[i] += strtoll(found + strlen(keys[i]), NULL, 10);
        }
        threads++;
    }
    closedir(tasks);
    if (threads == 0) {
        errno = ESRCH;
        return -1;
    }
    *voluntary = sums[0];
    *involuntary = sums[1];
    return 0;
}
