internal import EnclaveCore
internal import Synchronization
internal import _EnclaveChannel

/// The enclave's side of switchless calls, started when the host asks for it with the reserved call
/// ``SwitchlessRing/startCall``: one ``SwitchlessServer`` thread per ECALL slot of the ring, and a
/// ``SwitchlessCaller`` for the OCALLs the host opted in (``current``).
///
/// ECALLs through the ring run the same handlers as regular ECALLs (the application's limit on concurrent calls
/// included), called directly by the slot's thread; jobs that reach a slot's thread while it serves no call go to the
/// worker pool. The host's start request is untrusted input: strictly decoded, its spin clamped.
enum SwitchlessWorker {
    /// Switchless OCALLs: the caller over the ring's OCALL slots and the names that take it (`nil`: every OCALL).
    struct OCalls: Sendable {
        let caller: SwitchlessCaller
        let names: Set<String>?

        func routes(_ name: String) -> Bool { names?.contains(name) ?? true }
    }

    private static let started = Mutex(false)
    private static let ocalls = Mutex<OCalls?>(nil)

    /// The switchless OCALLs, once the host has started switchless calls with OCALL slots.
    static var current: OCalls? { ocalls.withLock { $0 } }

    /// Map the ring on ``SwitchlessRing/descriptor`` and serve each ECALL slot on a thread of its own; set up the
    /// OCALL caller when the ring has OCALL slots. `argument` is the host's encoded start request (empty: defaults).
    /// Once per process.
    static func start(
        argument: ArraySlice<UInt8>,
        resolve: @escaping SwitchlessServer.Resolve,
        pool: WorkerPool
    ) throws(EnclaveError) {
        let request: SwitchlessRing.StartRequest
        do {
            request =
                argument.isEmpty
                ? SwitchlessRing.StartRequest()
                : try BinaryDecoder(maxMessageSize: 1 << 20).decode(SwitchlessRing.StartRequest.self, from: argument)
        } catch {
            throw .malformedInput("switchless start request: \(error)")
        }
        let first = started.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { throw .invalidConfiguration("switchless calls are already being served") }
        let ring = try SwitchlessRing.attach(fd: SwitchlessRing.descriptor)
        for slot in ring.ecallSlots {
            SwitchlessServer.start(
                ring: ring,
                slot: slot,
                setup: { WorkerPool.nameThisThread("enclave-s\(slot)") },
                resolve: resolve,
                fallback: { job in pool.enqueue(job) }
            )
        }
        if ring.ocallSlotCount > 0 {
            let spin = UInt64(min(request.callerSpinMicroseconds, SwitchlessRing.maximumWorkerSpinMicroseconds))
            let caller = SwitchlessCaller(
                ring: ring,
                slots: ring.ocallSlots,
                spinNanoseconds: spin * 1000,
                collectorName: nil
            )
            ocalls.withLock { $0 = OCalls(caller: caller, names: request.ocalls.map(Set.init)) }
        }
    }
}
