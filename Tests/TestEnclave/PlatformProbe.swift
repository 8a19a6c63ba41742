// A key request on the platform channel (fd 4) sent by hand, before the runtime's start-up handshake.
import EnclaveCore

#if canImport(Glibc)
import Glibc
#endif

enum PlatformProbe {
    /// Ask the platform for a sealing key before the loader has checked this enclave's mappings.
    static func requestKeyBeforeHello() -> String {
        do {
            let request = PlatformProtocol.KeyRequest(name: .seal, policy: .signerID, securityVersion: 1)
            let argument = try BinaryEncoder().encode(request)
            let name = Array(PlatformProtocol.GetKey.name.utf8)
            var payload: [UInt8] = []
            Varint.append(UInt64(name.count), to: &payload)
            payload += name + argument
            var frame: [UInt8] = []
            withUnsafeBytes(of: UInt32(payload.count).littleEndian) { frame += $0 }
            frame.append(1)  // request
            withUnsafeBytes(of: UInt64(1).littleEndian) { frame += $0 }
            frame += payload
            guard writeAll(frame) else { return "write failed" }
            guard let header = readExactly(13) else { return "no answer" }
            let length = header[0..<4].reversed().reduce(0) { $0 << 8 | Int($1) }
            guard length <= 1 << 16, let body = readExactly(length) else { return "bad answer" }
            switch header[4] {
            case 2: return "granted \(try BinaryDecoder().decode([UInt8].self, from: body).count) bytes"
            case 3:
                var position = 0
                let codeLength = try Varint.readLength(body[...], at: &position, end: body.count, limit: body.count)
                return "refused: " + String(decoding: body[(position + codeLength)...], as: UTF8.self)
            default: return "unexpected frame kind \(header[4])"
            }
        } catch {
            return "failed: \(error)"
        }
    }

    private static func writeAll(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                write(PlatformProtocol.channelFD, $0.baseAddress, $0.count)
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private static func readExactly(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = bytes[offset...].withUnsafeMutableBytes {
                read(PlatformProtocol.channelFD, $0.baseAddress, $0.count)
            }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return nil }
            offset += got
        }
        return bytes
    }
}
