import EnclaveCore
import EnclaveHost
import Foundation
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
