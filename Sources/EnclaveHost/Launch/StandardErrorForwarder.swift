internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Carries what the enclave writes to its standard error to the host, one escaped line at a time.
///
/// The enclave's fd 2 is the write end of a pipe; the host reads the other end. Nothing the enclave writes reaches
/// the host's terminal or log raw: control characters (escape sequences, carriage returns, bells), Unicode format
/// characters (bidirectional overrides, zero-width characters) and backslashes are written as `\u{…}` and `\\`,
/// bytes that are not UTF-8 as U+FFFD, and a line is cut after ``maxLineLength`` bytes.
enum StandardErrorForwarder {
    /// The longest line passed on; longer output is cut into lines of this many bytes.
    static let maxLineLength = 4096

    /// Read `fd` until the enclave closes it, handing each escaped line to `sink`; closes `fd` at the end.
    static func start(fd: Int32, sink: @escaping @Sendable (String) -> Void) {
        let thread = Thread {
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { break }
                pending += chunk[0..<got]
                var start = 0
                while true {
                    let limit = min(pending.count, start + maxLineLength)
                    if let newline = pending[start..<limit].firstIndex(of: UInt8(ascii: "\n")) {
                        sink(escape(pending[start..<newline]))
                        start = newline + 1
                    } else if limit - start == maxLineLength {
                        sink(escape(pending[start..<limit]))
                        start = limit
                    } else {
                        break
                    }
                }
                pending.removeFirst(start)
            }
            if !pending.isEmpty { sink(escape(pending[...])) }
            close(fd)
        }
        thread.name = "enclave-stderr"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// `bytes` as printable text: see the type's description.
    static func escape(_ bytes: ArraySlice<UInt8>) -> String {
        var out = ""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default:
                if scalar == "\\" { out += "\\\\" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// The default sink: the host's standard error, each line prefixed with the enclave's pid.
    static func hostStandardError(pid: Int32) -> @Sendable (String) -> Void {
        { line in
            let text = Array("enclave \(pid): \(line)\n".utf8)
            _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
    }
}
