import EnclaveCore
import Foundation

@testable import _EnclaveChannel

#if canImport(Glibc)
import Glibc
#endif

/// The largest frame the fuzzed reader accepts (the channel's limit is configurable; small here so that announced
/// lengths both under and over it are reachable).
private let maxFrameSize = 1 << 16

/// Write sample streams into `FUZZ_SEED_DIR`: a request, a response, an error, a ping, and a frame over the limit.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_SEED_DIR"] else { return 0 }
    func frame(_ kind: Frame.Kind, _ id: UInt64, _ payload: [UInt8]) -> [UInt8] {
        Frame.header(kind: kind, callID: id, length: UInt32(payload.count)) + payload
    }
    let request = frame(.request, 1, FramePayload.requestPrefix(name: "echo") + [1, 2, 3])
    let streams: [[UInt8]] = [
        request + frame(.response, 1, [0, 1]) + frame(.ping, 2, Array("ping".utf8)),
        frame(.error, 7, FramePayload.error(code: "malformedInput", message: "bad")) + frame(.pong, 2, []),
        request + Frame.header(kind: .response, callID: 3, length: UInt32(maxFrameSize + 1)),
        frame(.request, 9, [UInt8](repeating: 0x41, count: 40_000)),
    ]
    for (index, stream) in streams.enumerated() {
        FileManager.default.createFile(atPath: "\(directory)/seed-\(index)", contents: Data(stream))
    }
    return 0
}

/// Feed the bytes through a socket to the frame reader and read frames until it stops; decode each request's and
/// error's payload as the RPC peer does. The reader must end with an error, never hang or crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard count <= 1 << 20 else { return 0 }
    var fds: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { fatalError("socketpair failed") }
    var bufferSize: Int32 = 4 << 20
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
    // A writer thread: the socket buffer may be smaller than the input. The input outlives the thread (awaited below).
    let address = UInt(bitPattern: start)
    let writer = Thread { [fds] in
        var offset = 0
        while offset < count, let start = UnsafePointer<UInt8>(bitPattern: address) {
            let written = send(fds[1], start + offset, count - offset, Int32(MSG_NOSIGNAL))
            if written <= 0 { break }
            offset += written
        }
        close(fds[1])
    }
    writer.start()
    let reader = FrameReader(fd: fds[0], maxFrameSize: maxFrameSize, spin: SpinPolicy(announcing: false))
    var frames = 0
    var consumed = 0
    loop: while true {
        switch reader.next() {
        case .success(let frame):
            frames += 1
            consumed += Frame.headerSize + frame.payload.count
            guard frame.payload.count <= maxFrameSize, consumed <= count else {
                fatalError("the reader returned more than it was given or a frame over the limit")
            }
            switch frame.kind {
            case .request: _ = try? FramePayload.parseRequest(frame.payload)
            case .error: _ = FramePayload.parseError(frame.payload)
            case .placement:
                // The reader refuses a placement frame that is not exactly 4 bytes.
                guard frame.payload.count == 4 else { fatalError("a placement frame of \(frame.payload.count) bytes") }
            case .response, .ping, .pong: break
            }
        case .failure:
            break loop
        }
    }
    close(fds[0])  // unblocks the writer if the reader stopped early
    while !writer.isFinished { usleep(50) }
    return 0
}
