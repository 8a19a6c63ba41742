internal import _EnclaveChannel

/// Switchless ECALLs: requests and answers pass through a call ring in memory shared with the enclave, served by
/// enclave threads that spin on it, instead of over the enclave's socket (see ``Enclave/Options/switchless``).
///
/// A call goes switchless when its name is in ``calls`` (or ``calls`` is `nil`) and its request (name and encoded
/// argument) fits a slot; it takes the regular channel when every slot is busy or the request is too large. A
/// result larger than a slot fails with `limitExceeded`: opt in only calls whose results fit. The enclave's code
/// needs no change: its runtime serves the ring when the host asks.
///
/// Switchless calls pay off when host and enclave run on different CPUs: the enclave's worker spins on its slot
/// while calls keep coming, so a call costs a few cache-line transfers instead of a socket round trip and two
/// wake-ups. On one CPU the two sides take turns (each yields between looks) and a call costs about a thread
/// switch. Idle workers sleep on a futex after `workerSpinMicroseconds`, so an idle enclave uses no CPU.
public struct Switchless: Sendable {
    /// Slots in the ring: how many switchless calls can be in flight at once, one enclave thread each (1…64).
    public var slots = 2
    /// Data bytes per slot: the largest request (call name and encoded argument) and result (8 KiB…16 MiB, a
    /// multiple of 64; at most 64 MiB in all).
    public var slotCapacity = 64 << 10
    /// The calls that go switchless, by name; `nil`: every call.
    public var calls: Set<String>?
    /// How long a host caller spins for its answer before it suspends (then the enclave wakes it).
    public var callerSpinMicroseconds = 50
    /// How long an enclave worker keeps spinning after its last call before it sleeps (at most 10 000).
    public var workerSpinMicroseconds = 100
    /// Slots for switchless OCALLs (enclave → host), one host thread each (0…64); 0 (the default): every OCALL takes
    /// the channel. The host's threads serve them with the handlers of ``Enclave/Options/ocalls``, spin on their slot
    /// for `workerSpinMicroseconds` after each call, then sleep; enclave callers spin `callerSpinMicroseconds`.
    public var ocallSlots = 0
    /// The OCALLs that go switchless when there are ``ocallSlots``, by name; `nil`: every OCALL. A result larger
    /// than a slot fails with `limitExceeded`, as for ECALLs.
    public var ocalls: Set<String>?

    /// Two slots of 64 KiB for every call; callers spin 50 µs, workers 100 µs.
    public init() {}

    /// Switchless for the calls named in `calls` only.
    public init(calls: Set<String>) {
        self.calls = calls
    }
}

extension Switchless {
    /// The start request the enclave gets with ``SwitchlessRing/startCall``.
    func startArgument() throws -> [UInt8] {
        try BinaryEncoder().encode(
            SwitchlessRing.StartRequest(
                ocalls: ocalls.map { $0.sorted() },
                callerSpinMicroseconds: UInt32(clamping: max(0, callerSpinMicroseconds))
            )
        )
    }

    /// Serve the OCALL slots of `ring` with `handlers`, one host thread per slot (they end when the ring closes).
    /// Reserved names (the loader's own calls) are refused on the ring.
    static func serveOCalls(ring: SwitchlessRing, handlers: [String: CallCodec.RawHandler]) {
        for slot in ring.ocallSlots {
            SwitchlessServer.start(
                ring: ring,
                slot: slot,
                resolve: { name in
                    guard let handler = handlers[name] else {
                        throw EnclaveError.unknownCall("the host has no OCALL named \"\(name)\"")
                    }
                    return SwitchlessServer.Handler(handler)
                },
                fallback: { job in globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
            )
        }
    }
}

extension Enclave {
    /// What the enclave's switchless OCALLs have done so far, as the enclave reports it (its callers count them);
    /// `nil` when switchless calls are not enabled. The enclave's word: statistics, not evidence.
    public func switchlessOCallCounters() async throws -> SwitchlessCounters? {
        guard switchless != nil else { return nil }
        let bytes = try await peer.call(name: SwitchlessRing.countersCall, argument: [])
        let counters = try BinaryDecoder(maxMessageSize: 1 << 10).decode(SwitchlessCaller.Counters.self, from: bytes)
        return SwitchlessCounters(
            switchless: counters.switchless,
            spunThenSlept: counters.spunThenSlept,
            fallback: counters.fallback,
            corrupt: counters.corrupt
        )
    }
    /// Post `request` into switchless slot `slot` as a caller would (tests of what a server refuses).
    package func writeSwitchlessRequest(_ slot: Int, _ request: [UInt8]) {
        guard let ring = switchless?.ring, slot >= 0, slot < ring.totalSlots, request.count <= ring.capacity else {
            return
        }
        ring.copyIn(slot, request)
        ring.scribble(slot: slot, word: 3, value: UInt32(request.count))
        ring.scribble(slot: slot, word: 4, value: 1)
        ring.scribble(slot: slot, word: 5, value: 0)
        ring.scribble(slot: slot, word: 0, value: SwitchlessRing.State.request.rawValue)
    }
}

/// What an enclave's switchless calls have done (``Enclave/switchlessCounters``).
public struct SwitchlessCounters: Sendable, Equatable {
    /// Calls answered through the ring.
    public var switchless: Int
    /// Of those, calls whose caller spun without an answer and then slept until the enclave woke it.
    public var spunThenSlept: Int
    /// Calls that took the regular channel because every slot was busy or the request did not fit a slot.
    public var fallback: Int
    /// Calls failed by a slot the enclave corrupted (the slot is retired).
    public var corrupt: Int
}
