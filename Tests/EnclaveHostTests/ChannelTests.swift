import EnclaveCore
import EnclaveHost
import Foundation
import Synchronization
import Testing
import _EnclaveChannel

#if canImport(Glibc)
import Glibc
#endif

@Suite("Channel framing")
struct ChannelTests {
    /// Write `bytes` into one end of a socket pair, close it, and read frames from the other end.
    func read(_ bytes: [UInt8], maxFrameSize: Int = 1024) -> [Result<Frame, EnclaveError>] {
        var fds: [Int32] = [0, 0]
        _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        _ = bytes.withUnsafeBytes { write(fds[0], $0.baseAddress, $0.count) }
        close(fds[0])
        let channel = FrameChannel(fd: fds[1], maxFrameSize: maxFrameSize)
        let reader = channel.makeReader()
        var results: [Result<Frame, EnclaveError>] = []
        while true {
            let next = reader.next()
            results.append(next)
            if case .failure = next { break }
        }
        return results
    }

    func header(length: UInt32, kind: UInt8, id: UInt64 = 7) -> [UInt8] {
        withUnsafeBytes(of: length.littleEndian, Array.init) + [kind] + withUnsafeBytes(of: id.littleEndian, Array.init)
    }

    @Test func readsFramesThenReportsTheEnd() throws {
        let results = read(header(length: 3, kind: 4) + [1, 2, 3] + header(length: 0, kind: 5))
        #expect(results.count == 3)
        let first = try results[0].get()
        #expect(first.kind == .ping && first.callID == 7 && first.payload == [1, 2, 3])
        #expect(try results[1].get().kind == .pong)
        #expect(throws: EnclaveError.channelClosed("")) { try results[2].get() }
    }

    @Test func unknownKindIsAProtocolViolation() {
        let results = read(header(length: 0, kind: 9))
        #expect(throws: EnclaveError.protocolViolation("")) { try results[0].get() }
    }

    @Test func oversizedFrameIsRefusedBeforeReadingIt() {
        let results = read(header(length: 1025, kind: 1) + [UInt8](repeating: 0, count: 1025))
        #expect(throws: EnclaveError.protocolViolation("")) { try results[0].get() }
        // At the limit it is accepted.
        #expect(throws: Never.self) {
            try read(header(length: 1024, kind: 1) + [UInt8](repeating: 0, count: 1024))[0].get()
        }
    }

    /// A header announcing 4 GiB (or one byte over the limit), with nothing behind it and the stream left open: the
    /// reader refuses at once from the header alone, before allocating or waiting for the payload.
    @Test func hugeLengthInAHeaderIsRefusedBeforeAllocation() throws {
        for length: UInt32 in [.max, 1025] {
            var fds: [Int32] = [0, 0]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            defer { close(fds[0]) }
            let bytes = header(length: length, kind: 1)
            _ = bytes.withUnsafeBytes { write(fds[0], $0.baseAddress, $0.count) }
            let channel = FrameChannel(fd: fds[1], maxFrameSize: 1024)
            let clock = ContinuousClock()
            var result: Result<Frame, EnclaveError>?
            let elapsed = withExtendedLifetime(channel) { clock.measure { result = channel.makeReader().next() } }
            let error = #expect(throws: EnclaveError.self) { try result?.get() }
            #expect(error?.code == .protocolViolation)
            #expect(error?.reason.contains("\(length)-byte frame") == true)
            #expect(elapsed < .seconds(30), "a hang guard: reading the announced length would block for ever")
        }
    }

    /// A hostile peer sends requests faster than they are served. Requests beyond the queue bound are refused with
    /// `limitExceeded` from the reader thread — no task, no buffered frame — and the host holds at most the bound.
    /// The control peer, without bounds (as every peer was before), accepts and holds all of them.
    @Test func requestFloodIsRefusedBeforeATaskIsCreated() async throws {
        for bounded in [true, false] {
            var fds: [Int32] = [0, 0]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            let hostile = fds[0]
            defer { close(hostile) }
            let release = Mutex(false)
            let peer = RPCPeer(
                channel: FrameChannel(fd: fds[1], maxFrameSize: 64 << 10),
                maxConcurrentRequests: 2,
                maxQueuedRequests: bounded ? 8 : .max,
                maxQueuedBytes: bounded ? 50 << 10 : .max,
                handler: { _, _ in
                    while !release.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
                    return []
                }
            )
            peer.start()
            // 100 requests of 8 KiB: the byte bound (50 KiB) admits 6 of them, below the count bound of 8.
            let argument = [UInt8](repeating: 0xAB, count: 8 << 10)
            for id in 1...100 {
                let payload = FramePayload.requestPrefix(name: "flood") + argument
                let frame = header(length: UInt32(payload.count), kind: 1, id: UInt64(id)) + payload
                _ = frame.withUnsafeBytes { send(hostile, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            // Deadlines are hang guards (the loops end as soon as the counts are reached): under the whole suite on two
            // cores the flood alone can take many seconds.
            let deadline = ContinuousClock.now + .seconds(60)
            var refused = 0
            if bounded {
                // Read the refusals the host sent back (a receive timeout ends the loop if fewer come).
                var timeout = timeval(tv_sec: 30, tv_usec: 0)
                let replyFD = dup(hostile)
                _ = setsockopt(replyFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let replies = FrameChannel(fd: replyFD, maxFrameSize: 64 << 10)
                withExtendedLifetime(replies) {
                    let reader = replies.makeReader()
                    while refused < 94 && ContinuousClock.now < deadline {
                        guard case .success(let frame) = reader.next() else { break }
                        #expect(frame.kind == .error)
                        #expect(FramePayload.parseError(frame.payload).code == "limitExceeded")
                        refused += 1
                    }
                }
                #expect(refused == 94)
                #expect(peer.queued.requests == 6)
                #expect(peer.queued.bytes <= 50 << 10)
            } else {
                while peer.queued.requests < 100 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(peer.queued.requests == 100)
                #expect(peer.queued.bytes > 800 << 10)
            }
            release.withLock { $0 = true }
            // Draining has a deadline of its own: on a loaded machine the flood above may have used most of the first.
            let drained = ContinuousClock.now + .seconds(300)
            while peer.queued.requests > 0 && ContinuousClock.now < drained {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(peer.queued.requests == 0 && peer.queued.bytes == 0)
            peer.channel.shutdown()
        }
    }

    /// Header, name prefix and payload leave in one `sendmsg` and arrive as one frame, byte for byte, small and large
    /// (a 2 MiB payload does not fit the socket buffer: the write resumes where the kernel stopped).
    @Test func prefixAndPayloadArriveAsOneFrame() throws {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let sender = FrameChannel(fd: fds[0], maxFrameSize: 4 << 20)
        let receiver = FrameChannel(fd: fds[1], maxFrameSize: 4 << 20)
        let reader = receiver.makeReader()
        for size in [0, 1, 4096, 2 << 20] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let prefix = FramePayload.requestPrefix(name: "t.frame")
            let done = Thread {
                try? sender.send(.request, callID: UInt64(size) + 11, prefix: prefix, payload: payload)
            }
            done.start()
            let frame = try reader.next().get()
            #expect(frame.kind == .request)
            #expect(frame.callID == UInt64(size) + 11)
            #expect(frame.payload == prefix + payload)
        }
        sender.shutdown()
        #expect(throws: EnclaveError.channelClosed("")) { try reader.next().get() }
    }

    /// The caller-reads mode against a scripted peer: answers reach callers that read and callers that waited, a
    /// request from the peer is served while a caller reads, and the peer's end fails every pending call at once.
    @Test func callerReadsModeDeliversAnswersAndFailsPendingCallsAtTheEnd() async throws {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let peer = RPCPeer(
            channel: FrameChannel(fd: fds[0], maxFrameSize: 1 << 20),
            maxConcurrentRequests: 4,
            handler: { name, argument in Array(name.utf8) + argument }
        )
        peer.startCallerReads()
        let remote = FrameChannel(fd: fds[1], maxFrameSize: 1 << 20)
        let remoteReader = remote.makeReader()
        // The scripted peer: answers each request with its argument reversed, after asking the caller's side a
        // question of its own first (whose answer it checks), and stops after `count` requests.
        let script = Thread {
            // Anything unexpected ends the script early, which shuts the channel: the test then fails, never hangs.
            var answered = 0
            serving: while answered < 40, case .success(let frame) = remoteReader.next() {
                switch frame.kind {
                case .request:
                    guard let request = try? FramePayload.parseRequest(frame.payload) else { break serving }
                    // In the sequential phase, ask the caller's side first (one call in flight: the next frame is
                    // the answer to this question).
                    if answered < 20 && answered % 4 == 0 {
                        try? remote.send(
                            .request,
                            callID: 1000 + frame.callID,
                            prefix: FramePayload.requestPrefix(name: "q"),
                            payload: [1]
                        )
                        guard case .success(let reply) = remoteReader.next(), reply.kind == .response,
                            reply.callID == 1000 + frame.callID, reply.payload == Array("q".utf8) + [1]
                        else { break serving }
                    }
                    if answered % 5 == 0 { usleep(3000) }  // slower than a caller's read window
                    try? remote.send(.response, callID: frame.callID, payload: request.argument.reversed())
                    answered += 1
                default:
                    break serving
                }
            }
            // Then the peer goes away while calls are pending.
            usleep(20_000)
            remote.shutdown()
        }
        script.start()
        for index in 0..<20 {
            let answer = try await peer.call(name: "c", argument: [UInt8(index), 0])
            #expect(answer == [0, UInt8(index)])
        }
        let concurrent = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                group.addTask { try await peer.call(name: "c", argument: [1, UInt8(index)]) == [UInt8(index), 1] }
            }
            var ok = 0
            for try await result in group where result { ok += 1 }
            return ok
        }
        #expect(concurrent == 20)
        // These are never answered: the peer's end fails them promptly.
        let clock = ContinuousClock()
        let start = clock.now
        let failures = await withTaskGroup(of: EnclaveError?.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    do {
                        _ = try await peer.call(name: "c", argument: [1])
                        return nil
                    } catch let error as EnclaveError {
                        return error
                    } catch {
                        return nil
                    }
                }
            }
            var errors: [EnclaveError] = []
            for await error in group { if let error { errors.append(error) } }
            return errors
        }
        #expect(failures.count == 3)
        #expect(failures.allSatisfy { $0.code == .channelClosed })
        #expect(clock.now - start < .seconds(30), "a hang guard: the closed channel fails the calls at once")
        #expect(peer.closeError != nil)
    }

    @Test func truncatedFrameEndsTheStream() {
        let full = header(length: 10, kind: 2) + [UInt8](repeating: 1, count: 10)
        for length in 1..<full.count {
            let results = read(Array(full.prefix(length)))
            #expect(results.count == 1)
            #expect(throws: EnclaveError.channelClosed("")) { try results[0].get() }
        }
    }

    @Test func requestPayloadsParseStrictly() throws {
        let good = FramePayload.requestPrefix(name: "a.b") + [9, 9]
        let parsed = try FramePayload.parseRequest(good)
        #expect(parsed.name == "a.b" && Array(parsed.argument) == [9, 9])
        // A name cut short, and a name that is not UTF-8.
        #expect(throws: EnclaveError.malformedInput("")) { try FramePayload.parseRequest([5, 0x61]) }
        #expect(throws: EnclaveError.malformedInput("")) { try FramePayload.parseRequest([2, 0xC3, 0x28]) }
    }

    @Test func mappedFilesOutsideTheManifestAreRefused() throws {
        let manifest = EnclaveManifest(
            imageDigest: .zero,
            trustedFiles: [.init(path: "/usr/lib/libc.so.6", digest: .zero)],
            maxThreads: 1,
            maxMemory: 1 << 30
        )
        #expect(
            StartupState.checkMappings(["/memfd:enclave-image (deleted)", "/usr/lib/libc.so.6"], against: manifest)
                == nil
        )
        let failure = StartupState.checkMappings(["/usr/lib/libc.so.6", "/tmp/evil.so"], against: manifest)
        #expect(failure?.code == .measurementMismatch)
        #expect(failure?.reason.contains("/tmp/evil.so") == true)
    }
}
