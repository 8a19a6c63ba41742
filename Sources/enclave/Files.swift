import ArgumentParser
import EnclaveCore
import Foundation

/// File helpers shared by the subcommands; user-facing failures become `ValidationError`s.
enum Files {
    /// A one-line description of a failure for the user.
    static func describe(_ error: any Error) -> String {
        if let error = error as? EnclaveError { return error.reason }
        if let error = error as? ValidationError { return error.message }
        return "\(error)"
    }

    static func read(_ path: String, what: String, limit: Int = 256 << 20) throws -> [UInt8] {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= limit else { throw ValidationError("\(what) \(path) is larger than \(limit) bytes") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(what) \(path)")
        }
        return [UInt8](data)
    }

    /// Print a JSON object, pretty and with sorted keys (what `--json` prints).
    static func printJSON(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Evidence bytes: binary as is, or hexadecimal text (as some tools write quotes) decoded.
    static func evidence(_ path: String) throws -> [UInt8] {
        let bytes = try read(path, what: "evidence", limit: 1 << 20)
        var text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("0x") { text.removeFirst(2) }
        if text.utf8.count >= 2, text.utf8.allSatisfy({ $0 < 0x80 }), let decoded = Hex.decode(text) {
            return decoded
        }
        return bytes
    }

    static func readText(_ path: String, what: String) throws -> String {
        String(decoding: try read(path, what: what), as: UTF8.self)
    }

    /// Write `bytes` to `path` atomically, with the given permissions from the first byte (a private key is never
    /// readable by others, not even while it is written).
    static func write(_ bytes: [UInt8], to path: String, mode: Int = 0o644) throws {
        do {
            try SecretFile.write(bytes, to: path, mode: UInt32(mode))
        } catch {
            throw ValidationError(error.reason)
        }
    }
}
