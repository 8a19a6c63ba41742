internal import CEnclaveSystem
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// Whether a thread about to wait for its peer's next bytes first spins for them, reading without blocking.
///
/// A blocking read costs a wake-up when the bytes come. When both ends share a CPU that is cheap and spinning would
/// be wrong (the peer runs because this side blocked). Across CPUs in a VM it is the dearest part of a round trip:
/// a halted vCPU is woken by an interrupt through the hypervisor (a raw socket round trip here takes 6 µs on one
/// vCPU, 45–115 µs across two). A waiting thread whose peer runs on another CPU therefore first reads with
/// `MSG_DONTWAIT` in a loop for up to ``spinNanoseconds``: bytes that come meanwhile are read with no wake-up on
/// either side (the peer's write finds no sleeper), so a call can beat the raw blocking round trip.
///
/// It never spins when the peer last ran on this thread's own CPU or when this side does not know where the peer
/// runs: on one vCPU no spin ever happens. And it spins only while spinning has paid off recently: after two spins
/// in a row that ran out, the next 1, then 2, 4 … up to ``maxSkips`` waits block at once (a success resets that), so
/// a peer that answers slowly or calls rarely costs at most one spin in every `maxSkips + 1` waits, and an idle
/// channel costs two spins, then nothing.
///
/// Each side learns where the other runs from ``Frame/Kind/placement`` frames, which a side sends ahead of its next
/// frame whenever the sending thread's CPU changed (``FrameChannel/send(_:callID:prefix:payload:)``). The enclave
/// announces from its first frame on; the host only once its enclave did (so an enclave built without them never
/// sees one). A placement is a hint from an untrusted peer: a false one costs at most bounded spins.
package final class SpinPolicy: Sendable {
    /// The longest one spin lasts: about the cost of a cross-vCPU wake-up here, so a spin that runs out costs at
    /// most what blocking at once would have cost in latency (it costs CPU, not time).
    package static let spinNanoseconds: UInt64 = 50_000
    /// The most waits that block at once after spins that ran out.
    package static let maxSkips = 256

    /// The CPU the peer's sending thread last ran on (-1: unknown).
    private let peerCPU = Atomic<Int>(-1)
    /// Whether this side announces its CPU.
    private let announcing: Atomic<Bool>
    /// Spins in a row that ran out, and how many waits still block at once.
    private let misses = Atomic<Int>(0)
    private let skips = Atomic<Int>(0)
    /// Spins that got bytes and spins that ran out (tests and benchmarks).
    private let paid = Atomic<Int>(0)
    private let ranOut = Atomic<Int>(0)

    /// A policy; `announcing` makes this side send placement frames from the start.
    package init(announcing: Bool) {
        self.announcing = Atomic(announcing)
    }

    /// Whether this side sends placement frames.
    package var announces: Bool { announcing.load(ordering: .relaxed) }

    /// The peer says its sending thread runs on `cpu`; it understands placement frames, so this side announces too.
    package func peerRuns(on cpu: Int) {
        peerCPU.store(cpu, ordering: .relaxed)
        announcing.store(true, ordering: .relaxed)
    }

    /// The CPU the peer last announced, or `nil`.
    package var peer: Int? {
        let cpu = peerCPU.load(ordering: .relaxed)
        return cpu >= 0 ? cpu : nil
    }

    /// How many spins got bytes, and how many ran out.
    package var outcomes: (paid: Int, ranOut: Int) {
        (paid.load(ordering: .relaxed), ranOut.load(ordering: .relaxed))
    }

    /// How much longer a wait spins per byte this side just sent: the peer copies them (at least once more after the
    /// kernel) before it can answer, so the answer to a large request takes longer to come and is still worth a spin.
    package static let extraNanosecondsPerByteSent = 0.25

    /// When a wait that starts now stops spinning (monotonic nanoseconds), or `nil` when it must block at once.
    /// `extraNanoseconds` lengthens this one spin (see ``extraNanosecondsPerByteSent``).
    package func spinDeadline(extraNanoseconds: UInt64 = 0) -> UInt64? {
        let peer = peerCPU.load(ordering: .relaxed)
        guard peer >= 0 else { return nil }
        let here = Self.currentCPU
        guard here >= 0, here != peer else { return nil }
        let skipping = skips.load(ordering: .relaxed)
        if skipping > 0 {
            skips.store(skipping - 1, ordering: .relaxed)
            return nil
        }
        return Self.now() &+ Self.spinNanoseconds &+ min(extraNanoseconds, 10 * Self.spinNanoseconds)
    }

    /// A spin got bytes: keep spinning.
    package func spinPaidOff() {
        misses.store(0, ordering: .relaxed)
        paid.add(1, ordering: .relaxed)
    }

    /// A spin ran out: from the second in a row on, block at once for the next 2^(misses in a row - 2) waits, at
    /// most ``maxSkips`` (a lone miss, a pause of the peer's, costs the waits after it nothing).
    package func spinRanOut() {
        let inRow = min(misses.load(ordering: .relaxed) + 1, 16)
        misses.store(inRow, ordering: .relaxed)
        skips.store(inRow < 2 ? 0 : min(1 << (inRow - 2), Self.maxSkips), ordering: .relaxed)
        ranOut.add(1, ordering: .relaxed)
    }

    /// The CPU the calling thread runs on now (-1 if unknown).
    package static var currentCPU: Int { Int(ek_current_cpu()) }

    /// Monotonic nanoseconds.
    package static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
