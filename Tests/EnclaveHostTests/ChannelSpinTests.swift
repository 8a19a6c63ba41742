import EnclaveCore
import EnclaveHost
import Foundation
import TestInterface
import Testing
import _EnclaveChannel

#if canImport(Glibc)
import Glibc
#endif

/// Placement frames, the spin policy they feed, and byte-block arguments sent without a copy.
@Suite("Channel placement and spinning", .serialized)
struct ChannelSpinTests {
    func header(length: UInt32, kind: UInt8, id: UInt64 = 0) -> [UInt8] {
        withUnsafeBytes(of: length.littleEndian, Array.init) + [kind] + withUnsafeBytes(of: id.littleEndian, Array.init)
    }

    func placement(cpu: UInt32) -> [UInt8] {
        header(length: 4, kind: 6) + withUnsafeBytes(of: cpu.littleEndian, Array.init)
    }

    func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    /// A peer that says where it runs: the channel records it and from then on announces its own CPU ahead of what it
    /// sends (a channel that heard nothing never does). Before placement frames existed, kind 6 closed the channel
    /// as an unknown kind and the ping below went unanswered.
    @Test func aPlacementFrameTellsWhereThePeerRunsAndStartsAnnouncing() throws {
        let (local, remote) = try socketPair()
        let peer = RPCPeer(
            channel: FrameChannel(fd: local, maxFrameSize: 1024),
            maxConcurrentRequests: 1,
            handler: { _, _ in [] }
        )
        peer.start()
        let raw = FrameChannel(fd: remote, maxFrameSize: 1024)
        let reader = raw.makeReader()
        // A ping before any placement: answered without one.
        try raw.send(.ping, callID: 1, payload: [1])
        let first = try reader.next().get()
        #expect(first.kind == .pong && first.callID == 1 && first.payload == [1])
        #expect(peer.channel.spin.peer == nil)
        #expect(!peer.channel.spin.announces)
        // The peer says it runs on CPU 3, then pings: the answer comes after this side's own placement.
        let bytes = placement(cpu: 3) + header(length: 1, kind: 4, id: 2) + [2]
        _ = bytes.withUnsafeBytes { send(remote, $0.baseAddress, $0.count, 0) }
        let announced = try reader.next().get()
        #expect(announced.kind == .placement && announced.callID == 0 && announced.payload.count == 4)
        let cpu = announced.payload.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        #expect(cpu < max(1, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        let pong = try reader.next().get()
        #expect(pong.kind == .pong && pong.callID == 2 && pong.payload == [2])
        #expect(peer.channel.spin.peer == 3)
        #expect(peer.channel.spin.announces)
        #expect(peer.closeError == nil)
        raw.shutdown()
        peer.channel.shutdown()
    }

    /// A placement frame carries exactly four bytes: any other length is a protocol violation that closes the
    /// channel (the stream can no longer be trusted), never a crash or a misread.
    @Test(arguments: [0, 3, 5, 64] as [UInt32])
    func aPlacementFrameOfAnotherLengthClosesTheChannel(length: UInt32) throws {
        let (local, remote) = try socketPair()
        let bytes = header(length: length, kind: 6) + [UInt8](repeating: 1, count: Int(length))
        _ = bytes.withUnsafeBytes { send(remote, $0.baseAddress, $0.count, 0) }
        close(remote)
        let channel = FrameChannel(fd: local, maxFrameSize: 1024)
        let result = channel.makeReader().next()
        #expect(throws: EnclaveError.protocolViolation("")) { try result.get() }
        if case .failure(let error) = result { #expect(error.reason.contains("placement frame")) }
    }

    /// An announcing channel sends its placement ahead of its first frame and again only when its thread's CPU
    /// changed: never more placements than frames, each four bytes naming a real CPU.
    @Test func anAnnouncingChannelSendsItsPlacementFirstAndOnlyOnChange() throws {
        let (local, remote) = try socketPair()
        let channel = FrameChannel(fd: local, maxFrameSize: 1024, announcesPlacement: true)
        let remoteChannel = FrameChannel(fd: remote, maxFrameSize: 1024)
        let reader = remoteChannel.makeReader()
        for id in 1...20 { try channel.send(.pong, callID: UInt64(id), payload: [UInt8(id)]) }
        channel.shutdown()
        var frames: [Frame] = []
        while case .success(let frame) = reader.next() { frames.append(frame) }
        withExtendedLifetime(remoteChannel) {}
        #expect(frames.first?.kind == .placement)
        let pongs = frames.filter { $0.kind == .pong }
        #expect(pongs.map(\.callID) == (1...20).map(UInt64.init))
        let placements = frames.filter { $0.kind == .placement }
        #expect(placements.count >= 1 && placements.count <= 20)
        #expect(placements.allSatisfy { $0.payload.count == 4 })
        // Never two placements in a row: each one precedes a frame.
        for (index, frame) in frames.enumerated() where frame.kind == .placement {
            #expect(index + 1 < frames.count && frames[index + 1].kind == .pong)
        }
    }

    /// The policy: no spin while the peer's CPU is unknown or is this thread's own (one vCPU never spins), a spin
    /// across CPUs, a lone miss free, then after two and three in a row 1 and 2 waits that block at once; a spin
    /// that paid off resets the count.
    @Test func theSpinPolicyNeverSpinsOnTheSameCPUAndBacksOffAfterMisses() throws {
        let policy = SpinPolicy(announcing: false)
        #expect(policy.spinDeadline() == nil, "spun without knowing where the peer runs")
        // The same CPU: checked where the thread did not move between reading its CPU and the decision.
        var checked = false
        for _ in 0..<100 where !checked {
            let here = SpinPolicy.currentCPU
            try #require(here >= 0)
            policy.peerRuns(on: here)
            let deadline = policy.spinDeadline()
            if SpinPolicy.currentCPU == here {
                #expect(deadline == nil, "spun with the peer on this thread's CPU")
                checked = true
            }
        }
        #expect(checked)
        policy.peerRuns(on: 1 << 20)  // no thread runs there: always another CPU
        #expect(policy.spinDeadline() != nil)
        // A lone miss costs nothing; from the second in a row on, 1, then 2 waits block at once.
        policy.spinRanOut()
        #expect(policy.spinDeadline() != nil)
        policy.spinRanOut()
        #expect(policy.spinDeadline() == nil)
        #expect(policy.spinDeadline() != nil)
        policy.spinRanOut()
        #expect(policy.spinDeadline() == nil)
        #expect(policy.spinDeadline() == nil)
        #expect(policy.spinDeadline() != nil)
        // A spin that paid off resets the count.
        policy.spinPaidOff()
        policy.spinRanOut()
        #expect(policy.spinDeadline() != nil)
        #expect(policy.outcomes.paid == 1 && policy.outcomes.ranOut == 4)
        // A longer first spin for a large request, bounded.
        let now = SpinPolicy.now()
        let long = try #require(policy.spinDeadline(extraNanoseconds: .max))
        #expect(long - now >= 10 * SpinPolicy.spinNanoseconds)
        #expect(long - now <= 11 * SpinPolicy.spinNanoseconds + 1_000_000_000)
    }

    /// A `[UInt8]` argument sent straight from the caller's buffer carries exactly the bytes `BinaryEncoder` writes
    /// for it after the call's name, at every length where the varint grows; over the encoder's limit it is refused
    /// as the encoder refuses it.
    @Test func aByteBlockArgumentIsSentAsTheEncoderWritesIt() async throws {
        let (local, remote) = try socketPair()
        let peer = RPCPeer(
            channel: FrameChannel(fd: local, maxFrameSize: 4 << 20),
            maxConcurrentRequests: 1,
            handler: { _, _ in [] }
        )
        peer.startCallerReads()
        let raw = FrameChannel(fd: remote, maxFrameSize: 4 << 20)
        let reader = raw.makeReader()
        // Every size fits the socket's default buffer: this thread sends, then reads.
        for size in [0, 1, 127, 128, 16_383, 16_384, 100_000] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
            let encoded = try BinaryEncoder().encode(bytes)
            let id = try bytes.withUnsafeBytes { buffer in
                try peer.beginCall(name: "t.block", byteBlock: buffer, maxArgumentSize: encoded.count)
            }
            let frame = try reader.next().get()
            #expect(frame.kind == .request && frame.callID == id)
            #expect(frame.payload == FramePayload.requestPrefix(name: "t.block") + encoded)
            try raw.send(.response, callID: id, payload: [UInt8(size & 0xFF)])
            #expect(try await peer.answer(to: id) == [UInt8(size & 0xFF)])
            // One byte under what the encoding needs: refused before anything is sent.
            let error = #expect(throws: EnclaveError.self) {
                try bytes.withUnsafeBytes { buffer in
                    try peer.beginCall(name: "t.block", byteBlock: buffer, maxArgumentSize: encoded.count - 1)
                }
            }
            #expect(error?.code == .limitExceeded)
            #expect(error?.reason.contains("encoded value is \(encoded.count) bytes") == true)
        }
        raw.shutdown()
        _ = await peer.closed()
    }

    /// Byte arguments of every size through an enclave (sent without the encoder's copy) come back intact, one over
    /// the message limit fails with `limitExceeded` as before, and the enclave keeps serving.
    @Test func byteArgumentsWithoutACopyReachTheEnclaveIntact() async throws {
        let enclave = try await CallTests.load { $0.maxMessageSize = 2 << 20 }
        for size in [0, 1, 127, 128, 65_536, 1 << 20] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 1) }
            #expect(try await enclave.call(Echo.self, payload) == payload)
        }
        // The encoding of 2 MiB of bytes is 2 MiB + 5: one over the limit.
        let error = await #expect(throws: EnclaveError.self) {
            try await enclave.call(Echo.self, [UInt8](repeating: 0, count: 2 << 20))
        }
        #expect(error?.code == .limitExceeded)
        #expect(try await enclave.call(Echo.self, [9]) == [9])
        await enclave.terminate()
    }

    /// End to end, host and enclave pinned to one CPU: the host never spins (its waits block at once).
    @Test func theHostNeverSpinsWithTheEnclaveOnItsCPU() async throws {
        let enclave = try await CallTests.load()
        defer {
            try? CallFloor.pin(cpu: nil)
            try? CallFloor.pin(process: enclave.processID, cpu: nil)
        }
        try CallFloor.pin(cpu: 0)
        try CallFloor.pin(process: enclave.processID, cpu: 0)
        // Make the enclave announce from CPU 0 (with its next frames), then count.
        for _ in 0..<20 { _ = try await enclave.call(Echo.self, [1]) }
        #expect(enclave.enclaveCPU == 0)
        let before = enclave.channelSpins
        for _ in 0..<300 { _ = try await enclave.call(Echo.self, [2]) }
        let after = enclave.channelSpins
        #expect(after.paid == before.paid && after.ranOut == before.ranOut, "a wait spun on one CPU")
        await enclave.terminate()
    }

    /// End to end, host on CPU 0 and enclave on CPU 1: the enclave says where it runs and the host's waits spin and
    /// get their answers. Whether a spin pays off (the answer within 50 µs) depends on the machine's load: under the
    /// whole suite on two CPUs none of 300 did (CI), so the test asks that waits spun, paid off or not.
    @Test(.enabled(if: CallFloor.availableCPUs > 1))
    func theHostSpinsWhileTheEnclaveRunsOnAnotherCPU() async throws {
        let enclave = try await CallTests.load()
        defer {
            try? CallFloor.pin(cpu: nil)
            try? CallFloor.pin(process: enclave.processID, cpu: nil)
        }
        try CallFloor.pin(cpu: 0)
        try CallFloor.pin(process: enclave.processID, cpu: 1)
        for _ in 0..<20 { _ = try await enclave.call(Echo.self, [3]) }
        #expect(enclave.enclaveCPU == 1)
        let before = enclave.channelSpins
        for _ in 0..<300 { #expect(try await enclave.call(Echo.self, [4]) == [4]) }
        let after = enclave.channelSpins
        #expect(after.paid + after.ranOut > before.paid + before.ranOut, "no wait spun across CPUs")
        await enclave.terminate()
    }
}
