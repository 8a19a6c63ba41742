internal import CEnclaveSystem
public import EnclaveCore

#if canImport(Glibc)
internal import Glibc
#endif

/// The machine's floor for crossing between two processes, measured by a minimal C program with none of EnclaveKit's
/// code on the path (no framing, no Swift concurrency): what `enclave bench calls` compares every call against.
public enum CallFloor {
    /// The send and receive buffer the enclave channel's sockets ask for, on both ends (`SO_SNDBUF`, `SO_RCVBUF`):
    /// room for a 1 MiB call in flight, so that its writer does not stop halfway to wait for the reader (the
    /// kernel's default is about 208 KiB). The socket floor uses the same.
    public static let channelSocketBufferBytes = 2 << 20

    /// The send buffer a socket gets when it asks for `bytes` (the kernel doubles the request and caps it at
    /// `net.core.wmem_max`), or `nil` when that cannot be seen.
    public static func effectiveSocketBuffer(asking bytes: Int) -> Int? {
        var fds: [Int32] = [-1, -1]
        guard ek_socketpair(&fds) == 0 else { return nil }
        defer {
            close(fds[0])
            close(fds[1])
        }
        guard ek_set_socket_buffers(fds[0], Int32(clamping: bytes)) == 0 else { return nil }
        let effective = ek_socket_send_buffer(fds[0])
        return effective > 0 ? Int(effective) : nil
    }

    /// Round trips over an `AF_UNIX` stream socket pair (the transport of the enclave channel) between this thread,
    /// pinned to `hostCPU`, and a forked child echoing with blocking `read`/`write`, pinned to `peerCPU` (`nil`:
    /// unpinned). Each sends `requestBytes` and waits for `replyBytes`. Both sockets ask for `socketBufferBytes` of
    /// send and receive buffer as the enclave channel's do (`nil`: the system's default). With `spinMicroseconds`
    /// both sides first read without blocking for up to that long whenever they wait (as the channel does across
    /// CPUs); by default they block at once. Returns each latency in microseconds.
    public static func socketRoundTrips(
        iterations: Int,
        requestBytes: Int,
        replyBytes: Int,
        hostCPU: Int?,
        peerCPU: Int?,
        socketBufferBytes: Int? = channelSocketBufferBytes,
        spinMicroseconds: Int = 0
    ) throws(EnclaveError) -> [Double] {
        var samples = [Int64](repeating: 0, count: max(1, iterations))
        let status = samples.withUnsafeMutableBufferPointer { buffer in
            ek_bench_socketpair_floor(
                Int32(buffer.count),
                Int32(min(1000, max(10, buffer.count / 10))),
                Int32(max(1, requestBytes)),
                Int32(max(1, replyBytes)),
                Int32(hostCPU ?? -1),
                Int32(peerCPU ?? -1),
                Int32(clamping: socketBufferBytes ?? 0),
                Int64(max(0, spinMicroseconds)) * 1000,
                buffer.baseAddress
            )
        }
        guard status == 0 else { throw .callFailed("socket floor measurement failed (errno \(ek_errno()))") }
        return samples.map { Double($0) / 1000 }
    }

    /// Handoffs through a shared mapping between this thread and a forked child, both spinning on a sequence number
    /// (yielding after a bounded spin); with `payloadBytes` each handoff also copies that many bytes in and out.
    /// Returns each round trip in microseconds.
    public static func sharedMemoryHandoffs(
        iterations: Int,
        payloadBytes: Int,
        hostCPU: Int?,
        peerCPU: Int?
    ) throws(EnclaveError) -> [Double] {
        var samples = [Int64](repeating: 0, count: max(1, iterations))
        let status = samples.withUnsafeMutableBufferPointer { buffer in
            ek_bench_shm_floor(
                Int32(buffer.count),
                Int32(min(1000, max(10, buffer.count / 10))),
                Int32(max(0, payloadBytes)),
                Int32(hostCPU ?? -1),
                Int32(peerCPU ?? -1),
                buffer.baseAddress
            )
        }
        guard status == 0 else { throw .callFailed("shared-memory floor measurement failed (errno \(ek_errno()))") }
        return samples.map { Double($0) / 1000 }
    }

    /// Pin every thread of process `pid` (`nil`: this process) to `cpu`, or unpin them (`cpu` `nil`). Threads
    /// started later inherit their creator's affinity.
    public static func pin(process pid: Int32? = nil, cpu: Int?) throws(EnclaveError) {
        guard ek_pin_process(pid ?? 0, Int32(cpu ?? -1)) == 0 else {
            throw .callFailed("could not set the CPU affinity of process \(pid ?? getpid()) (errno \(ek_errno()))")
        }
    }

    /// CPU seconds (user + system) process `pid` has used so far, or `nil` when unreadable.
    public static func cpuSeconds(process pid: Int32) -> Double? {
        let ticks = ek_process_cpu_ticks(pid)
        let perSecond = ek_clock_ticks_per_second()
        guard ticks >= 0, perSecond > 0 else { return nil }
        return Double(ticks) / Double(perSecond)
    }

    /// Context switches of every live thread of process `pid` (`nil`: this process) so far, voluntary (the thread
    /// blocked) and involuntary (it was preempted); `nil` when `/proc` is unreadable.
    public static func contextSwitches(process pid: Int32? = nil) -> (voluntary: Int, involuntary: Int)? {
        var voluntary: Int64 = 0
        var involuntary: Int64 = 0
        guard ek_process_context_switches(pid ?? getpid(), &voluntary, &involuntary) == 0 else { return nil }
        return (Int(voluntary), Int(involuntary))
    }

    /// How many CPUs this process may run on.
    public static var availableCPUs: Int {
        Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }
}
