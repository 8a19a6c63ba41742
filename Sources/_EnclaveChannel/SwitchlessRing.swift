internal import CEnclaveSystem
package import EnclaveCore

#if canImport(Glibc)
internal import Glibc
#endif

/// The shared-memory call ring of switchless calls: a memory file the host creates, seals against resizing and
/// passes to the enclave as fd ``descriptor``; both map it.
///
/// Layout (native byte order, both sides run on one machine): a 64-byte header — `u32` magic, `u32` version, `u32`
/// ECALL slot count, `u32` slot capacity, `u32` doorbell, `u32` closed, `u32` worker spin in microseconds, `u32`
/// OCALL slot count, `u32` OCALL doorbell — then the slots (ECALL slots first, then OCALL slots), each 64-byte
/// aligned: a 32-byte header — `u32` state, `u32` server sleeping, `u32` caller waiting, `u32` length, `u64`
/// sequence, `u32` caller CPU, `u32` server CPU — then `capacity` data bytes (and 32 bytes of padding). A small
/// request or answer (up to 32 bytes: an empty call) shares the header's cache line, so a call moves one line each
/// way, as a bare handoff does: the caller writes the line once (its request; a taken answer stays in place) and the
/// server once (its answer).
///
/// ECALL slots are posted by the host and served by enclave threads; OCALL slots are posted by the enclave and
/// served by host threads. The checks are the same either way: the caller checks answers
/// (``checkAnswer(_:sequence:capacity:)``), the server checks requests (``checkRequest(_:capacity:)``).
///
/// Neither side trusts what the other writes: a reader takes one snapshot of a slot's header words, validates the
/// snapshot (state, length within the capacity it computed itself, sequence), then copies the data out and parses
/// only the copy. Slot count and capacity are read once, validated, and never read again from the shared header.
/// The file is sealed against growing and shrinking before the enclave gets it (and the enclave checks the seal), so
/// neither side can make the other's mapping fault.
package struct SwitchlessRing: @unchecked Sendable {  // unchecked: a raw mapping; every access is atomic or copied
    /// The enclave's fd for the ring (after its call channel, 3, and its platform channel, 4).
    package static let descriptor: Int32 = 5
    /// The reserved ECALL that asks the enclave to start serving the ring.
    package static let startCall = "__enclavekit.switchless.start"
    /// The reserved ECALL that answers the enclave's switchless OCALL counters (``SwitchlessCaller/Counters``).
    package static let countersCall = "__enclavekit.switchless.counters"
    static let magic: UInt32 = 0x5753_4B45  // "EKSW"
    static let version: UInt32 = 2
    static let headerSize = 64
    /// The bytes of each slot's header words; the data follows them in the same cache line.
    static let slotHeaderSize = 32
    /// The distance between two slots beyond their capacity (header and padding to a 64-byte boundary).
    static let slotOverhead = 64
    /// Bounds on what the host may ask for, checked on both sides.
    package static let slotLimit = 64
    package static let minimumCapacity = 8 << 10
    package static let maximumCapacity = 16 << 20
    package static let maximumSize = 64 << 20
    package static let maximumWorkerSpinMicroseconds: UInt32 = 10_000

    /// What the host sends with ``startCall``: which OCALLs the enclave makes switchless and how long its callers
    /// spin. Untrusted input to the enclave (decoded strictly, the spin clamped).
    package struct StartRequest: Codable, Sendable, Equatable {
        /// The OCALLs that go through the ring's OCALL slots; `nil`: every OCALL.
        package var ocalls: [String]?
        /// How long an enclave caller spins for the host's answer before it suspends.
        package var callerSpinMicroseconds: UInt32

        package init(ocalls: [String]? = nil, callerSpinMicroseconds: UInt32 = 50) {
            self.ocalls = ocalls
            self.callerSpinMicroseconds = callerSpinMicroseconds
        }
    }

    /// A slot's state word.
    package enum State: UInt32, Sendable {
        /// The caller owns the slot and has never used it. (A caller that took an answer leaves the answer's
        /// state in place until its next request: freeing the slot costs no store into the line the server
        /// watches.)
        case free = 0
        /// The host wrote a request: the enclave's worker takes it.
        case request = 1
        /// The enclave's worker runs the request (optional: a worker may go from request to answer directly, which
        /// saves a transfer of the slot's cache line; the host treats both as pending).
        case working = 2
        /// The enclave wrote a result.
        case response = 3
        /// The enclave wrote an error payload (code and message, as in an error frame).
        case error = 4
        /// The host wrote bytes to echo: the enclave answers them as a response, without decoding or running
        /// anything (the ring's transport floor).
        case ping = 5
    }

    // Header word offsets.
    package static let doorbellOffset = 16
    package static let closedOffset = 20
    /// The doorbell the enclave's collector sleeps on, rung by host threads answering OCALLs for waiting callers.
    package static let ocallDoorbellOffset = 32
    // Slot header word offsets.
    package static let stateOffset = 0
    package static let workerSleepingOffset = 4
    package static let hostWaitingOffset = 8
    package static let lengthOffset = 12
    package static let sequenceOffset = 16
    /// The CPU the host caller ran on when it posted, and the CPU the worker last ran on: advice only (each side
    /// yields instead of busy-spinning when the other is on its CPU), never trusted for anything else.
    package static let hostCPUOffset = 24
    package static let workerCPUOffset = 28

    let base: UnsafeMutableRawPointer
    /// The mapping's size in bytes.
    package let size: Int
    /// How many ECALL slots (one enclave worker each): slots `0..<slotCount`.
    package let slotCount: Int
    /// How many OCALL slots (one host thread each): slots `slotCount..<slotCount + ocallSlotCount`.
    package let ocallSlotCount: Int
    /// Every slot, ECALL and OCALL.
    package var totalSlots: Int { slotCount + ocallSlotCount }
    /// The ECALL slots.
    package var ecallSlots: Range<Int> { 0..<slotCount }
    /// The OCALL slots.
    package var ocallSlots: Range<Int> { slotCount..<slotCount + ocallSlotCount }
    /// The data bytes of each slot: the largest request (name and argument) or result it carries.
    package let capacity: Int
    /// How long an enclave worker spins on its slot before it sleeps.
    package let workerSpinMicroseconds: UInt32
    let stride: Int

    private init(
        base: UnsafeMutableRawPointer,
        size: Int,
        slotCount: Int,
        ocallSlotCount: Int,
        capacity: Int,
        workerSpin: UInt32
    ) {
        self.base = base
        self.size = size
        self.slotCount = slotCount
        self.ocallSlotCount = ocallSlotCount
        self.capacity = capacity
        self.workerSpinMicroseconds = workerSpin
        self.stride = Self.slotOverhead + capacity
    }

    /// The bytes a ring of `slots` ECALL slots and `ocallSlots` OCALL slots of `capacity` bytes takes, or `nil` when
    /// the request is out of bounds.
    package static func size(slots: Int, ocallSlots: Int = 0, capacity: Int) -> Int? {
        guard (1...slotLimit).contains(slots), (0...slotLimit).contains(ocallSlots),
            (minimumCapacity...maximumCapacity).contains(capacity), capacity % 64 == 0
        else { return nil }
        let total = headerSize + (slots + ocallSlots) * (slotOverhead + capacity)
        return total <= maximumSize ? total : nil
    }

    /// Create a ring (host side): returns it and the fd to hand to the enclave (close-on-exec, sealed against
    /// resizing). The mapping lives as long as the process.
    package static func create(
        slots: Int,
        ocallSlots: Int = 0,
        capacity: Int,
        workerSpinMicroseconds: UInt32
    ) throws(EnclaveError) -> (ring: SwitchlessRing, fd: Int32) {
        guard let size = size(slots: slots, ocallSlots: ocallSlots, capacity: capacity) else {
            throw .invalidConfiguration(
                "switchless ring: 1…\(slotLimit) ECALL slots and 0…\(slotLimit) OCALL slots of "
                    + "\(minimumCapacity)…\(maximumCapacity) bytes (a multiple of 64), at most \(maximumSize) bytes in "
                    + "all; asked for \(slots) and \(ocallSlots) of \(capacity)"
            )
        }
        var mapping: UnsafeMutableRawPointer?
        let fd = ek_ring_create("enclave-switchless", UInt64(size), &mapping)
        guard fd >= 0, let base = mapping else {
            throw .launchFailed("could not create the switchless call ring (errno \(ek_errno()))")
        }
        let spin = min(workerSpinMicroseconds, maximumWorkerSpinMicroseconds)
        let header = base.assumingMemoryBound(to: UInt32.self)
        header[1] = version
        header[2] = UInt32(slots)
        header[3] = UInt32(capacity)
        header[6] = spin
        header[7] = UInt32(ocallSlots)
        ek_atomic_store32(header, magic)
        let ring = SwitchlessRing(
            base: base,
            size: size,
            slotCount: slots,
            ocallSlotCount: ocallSlots,
            capacity: capacity,
            workerSpin: spin
        )
        return (ring, fd)
    }

    /// Map the ring the host passed on `fd` (enclave side) and validate its header: a sealed memory file of at most
    /// ``maximumSize`` bytes, this version, slot count and capacity within bounds and inside the file.
    package static func attach(fd: Int32) throws(EnclaveError) -> SwitchlessRing {
        var mappedSize: UInt64 = 0
        guard let base = ek_ring_map(fd, UInt64(maximumSize), &mappedSize) else {
            throw .invalidConfiguration(
                "switchless ring: fd \(fd) is not a memory file sealed against shrinking of at most \(maximumSize) "
                    + "bytes (errno \(ek_errno()))"
            )
        }
        let header = base.assumingMemoryBound(to: UInt32.self)
        // One copy of each word; only the copies are checked and used.
        let fields = (0..<8).map { ek_atomic_load32(header + $0) }
        let slots = Int(fields[2])
        let capacity = Int(fields[3])
        let ocallSlots = Int(fields[7])
        guard fields[0] == magic, fields[1] == version,
            let expected = size(slots: slots, ocallSlots: ocallSlots, capacity: capacity),
            expected <= Int(mappedSize)
        else {
            _ = ek_ring_unmap(base, mappedSize)
            throw .invalidConfiguration(
                "switchless ring: bad header (magic \(fields[0]), version \(fields[1]), \(slots) + \(ocallSlots) "
                    + "slots of \(capacity) bytes in a \(mappedSize)-byte file)"
            )
        }
        return SwitchlessRing(
            base: base,
            size: Int(mappedSize),
            slotCount: slots,
            ocallSlotCount: ocallSlots,
            capacity: capacity,
            workerSpin: min(fields[6], maximumWorkerSpinMicroseconds)
        )
    }

    // MARK: Words

    package func headerWord(_ offset: Int) -> UnsafeMutablePointer<UInt32> {
        (base + offset).assumingMemoryBound(to: UInt32.self)
    }

    package func slotWord(_ slot: Int, _ offset: Int) -> UnsafeMutablePointer<UInt32> {
        precondition(slot >= 0 && slot < totalSlots)
        return (base + Self.headerSize + slot * stride + offset).assumingMemoryBound(to: UInt32.self)
    }

    package func sequenceWord(_ slot: Int) -> UnsafeMutablePointer<UInt64> {
        precondition(slot >= 0 && slot < totalSlots)
        return (base + Self.headerSize + slot * stride + Self.sequenceOffset).assumingMemoryBound(to: UInt64.self)
    }

    package func data(_ slot: Int) -> UnsafeMutableRawPointer {
        precondition(slot >= 0 && slot < totalSlots)
        return base + Self.headerSize + slot * stride + Self.slotHeaderSize
    }

    /// The doorbell the host's collector thread sleeps on; the enclave rings it when a host caller waits.
    package var doorbell: UnsafeMutablePointer<UInt32> { headerWord(Self.doorbellOffset) }

    /// The doorbell of the callers of `slot`: the host's for ECALL slots, the enclave's for OCALL slots.
    package func doorbell(for slot: Int) -> UnsafeMutablePointer<UInt32> {
        headerWord(slot < slotCount ? Self.doorbellOffset : Self.ocallDoorbellOffset)
    }

    /// Whether the host closed the ring (its workers then stop).
    package var isClosed: Bool { ek_atomic_load32(headerWord(Self.closedOffset)) != 0 }

    /// Mark the ring closed and wake every server and the doorbells' sleepers.
    package func close() {
        ek_atomic_store32(headerWord(Self.closedOffset), 1)
        for slot in 0..<totalSlots { _ = ek_futex_wake(slotWord(slot, Self.stateOffset), Int32.max) }
        for offset in [Self.doorbellOffset, Self.ocallDoorbellOffset] {
            _ = ek_atomic_add32(headerWord(offset), 1)
            _ = ek_futex_wake(headerWord(offset), Int32.max)
        }
    }

    // MARK: Snapshots and their checks

    /// One reading of a slot's header words. Checked once, then only the checked values are used.
    package struct Snapshot: Sendable, Equatable {
        package var state: UInt32
        package var length: UInt32
        package var sequence: UInt64

        package init(state: UInt32, length: UInt32, sequence: UInt64) {
            self.state = state
            self.length = length
            self.sequence = sequence
        }
    }

    /// Read slot `slot`'s header words once: the state with acquire first, then the length and sequence (relaxed).
    ///
    /// The writer stores the data, the length and the sequence, then the state (with release, or sequentially
    /// consistent, which includes it): reading that state with acquire makes everything stored before it visible, so
    /// the length, sequence and data read after it are at least those published with it. Whatever the other side
    /// stores later (a corrupt or hostile writer) is a race on plain words, never a torn decision: each word is read
    /// once, atomically, and only the snapshot is checked and used.
    package func snapshot(_ slot: Int) -> Snapshot {
        let state = ek_atomic_load32_acquire(slotWord(slot, Self.stateOffset))
        let length = ek_atomic_load32_relaxed(slotWord(slot, Self.lengthOffset))
        let sequence = ek_atomic_load64_relaxed(sequenceWord(slot))
        return Snapshot(state: state, length: length, sequence: sequence)
    }

    /// Store the length and sequence of what the caller is about to publish in slot `slot` (relaxed: the state
    /// store that follows publishes them, see ``snapshot(_:)``).
    package func storeHeader(_ slot: Int, length: Int, sequence: UInt64) {
        ek_atomic_store32_relaxed(slotWord(slot, Self.lengthOffset), UInt32(length))
        ek_atomic_store64_relaxed(sequenceWord(slot), sequence)
    }

    /// What a host caller found in its slot.
    package enum Answer: Equatable, Sendable {
        /// Not answered yet (the request is waiting or running).
        case pending
        /// A result of this many bytes.
        case response(Int)
        /// An error payload of this many bytes.
        case error(Int)
    }

    /// Check the enclave's answer in a slot the host filled with request `sequence` (host side): a state the
    /// enclave may set, a length within the slot, the request's sequence. Anything else is a corrupt ring.
    package static func checkAnswer(
        _ snapshot: Snapshot,
        sequence: UInt64,
        capacity: Int
    ) throws(EnclaveError) -> Answer {
        guard let state = State(rawValue: snapshot.state) else {
            throw .protocolViolation("switchless slot: unknown state \(snapshot.state)")
        }
        switch state {
        case .request, .working, .ping:
            return .pending
        case .free:
            throw .protocolViolation("switchless slot: the enclave freed a slot it was answering")
        case .response, .error:
            guard Int(snapshot.length) <= capacity else {
                throw .protocolViolation(
                    "switchless slot: answer of \(snapshot.length) bytes exceeds the \(capacity)-byte slot"
                )
            }
            guard snapshot.sequence == sequence else {
                throw .protocolViolation(
                    "switchless slot: answer to request \(snapshot.sequence), expected \(sequence)"
                )
            }
            return state == .response ? .response(Int(snapshot.length)) : .error(Int(snapshot.length))
        }
    }

    /// Check a request the host posted (enclave side): returns its length, or why it cannot be served.
    package static func checkRequest(_ snapshot: Snapshot, capacity: Int) -> Result<Int, EnclaveError> {
        guard snapshot.state == State.request.rawValue || snapshot.state == State.ping.rawValue else {
            return .failure(.protocolViolation("switchless slot: state \(snapshot.state) is not a request"))
        }
        guard Int(snapshot.length) <= capacity else {
            return .failure(
                .malformedInput("switchless request of \(snapshot.length) bytes exceeds the \(capacity)-byte slot")
            )
        }
        return .success(Int(snapshot.length))
    }

    /// Copy `count` (checked) bytes out of slot `slot`'s data.
    package func copyOut(_ slot: Int, count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= capacity)
        let source = data(slot)
        if count == 2 {
            // Read once, then compared: an empty value's answer is the shared encoding, not an allocation.
            let first = source.load(as: UInt8.self)
            let second = source.load(fromByteOffset: 1, as: UInt8.self)
            return first == 1 && second == 0 ? BinaryEncoder.emptyEncoding : [first, second]
        }
        return [UInt8](unsafeUninitializedCapacity: count) { target, initialized in
            if count > 0 {
                target.baseAddress!.initialize(from: source.assumingMemoryBound(to: UInt8.self), count: count)
            }
            initialized = count
        }
    }

    /// Copy `count` (checked) bytes out of slot `slot`'s data into `buffer` (its storage reused when it is large
    /// enough and not shared).
    package func copyOut(_ slot: Int, count: Int, into buffer: inout [UInt8]) {
        precondition(count >= 0 && count <= capacity)
        buffer.removeAll(keepingCapacity: true)
        buffer.append(
            contentsOf: UnsafeBufferPointer(start: data(slot).assumingMemoryBound(to: UInt8.self), count: count)
        )
    }

    /// Copy `first` then `second` into slot `slot`'s data; the caller checked they fit.
    package func copyIn(_ slot: Int, _ first: [UInt8], _ second: [UInt8] = []) {
        precondition(first.count + second.count <= capacity)
        let target = data(slot)
        first.withUnsafeBytes { if let base = $0.baseAddress { target.copyMemory(from: base, byteCount: $0.count) } }
        second.withUnsafeBytes {
            if let base = $0.baseAddress { (target + first.count).copyMemory(from: base, byteCount: $0.count) }
        }
    }

    /// Copy `bytes` into slot `slot`'s data at `offset`; the caller checked they fit.
    package func copyIn(_ slot: Int, at offset: Int, _ bytes: UnsafeRawBufferPointer) {
        precondition(offset >= 0 && offset + bytes.count <= capacity)
        if let source = bytes.baseAddress, bytes.count > 0 {
            (data(slot) + offset).copyMemory(from: source, byteCount: bytes.count)
        }
    }

    /// Whether the other side last ran on this thread's CPU (read from `word`, which it writes): then spinning
    /// only keeps it from running, and a waiter yields instead. Advice only. `cpu`: this thread's CPU when the
    /// caller has just read it.
    package func sharesCPU(with word: Int, slot: Int, cpu: Int32? = nil) -> Bool {
        let mine = cpu ?? ek_current_cpu()
        return mine >= 0 && UInt32(truncatingIfNeeded: mine) == ek_atomic_load32_relaxed(slotWord(slot, word))
    }

    /// Record this thread's CPU in `word` of slot `slot` (advice for the other side's spin). Written only when it
    /// changed: a store takes the slot's cache line from the other side, which then misses on its next look. Relaxed:
    /// advice orders nothing.
    package func publishCPU(_ word: Int, slot: Int) {
        publishCPU(word, slot: slot, cpu: ek_current_cpu())
    }

    /// ``publishCPU(_:slot:)`` with the CPU read beforehand (`ek_current_cpu`), by a writer that keeps its stores
    /// into the slot together.
    @inline(__always)
    package func publishCPU(_ word: Int, slot: Int, cpu: Int32) {
        let cpu = UInt32(truncatingIfNeeded: cpu)
        let target = slotWord(slot, word)
        if ek_atomic_load32_relaxed(target) != cpu { ek_atomic_store32_relaxed(target, cpu) }
    }

    // MARK: Test access

    /// Write `value` into 32-bit word `index` of slot `slot`'s header (tests that corrupt the ring).
    package func scribble(slot: Int, word index: Int, value: UInt32) {
        precondition((0..<Self.slotHeaderSize / 4).contains(index))
        ek_atomic_store32(slotWord(slot, index * 4), value)
        _ = ek_futex_wake(slotWord(slot, Self.stateOffset), Int32.max)
    }
}
