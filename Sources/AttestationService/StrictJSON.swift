internal import Foundation

/// A check of JSON text that the JSON parsers do not make: no object names a member twice. Parsers disagree on
/// duplicates (Foundation keeps the first, Python and JavaScript the last), so a document with one means different
/// things to the service and to a relying party: it is refused (`DuplicateJSONKey`). Names are compared after their
/// escapes are decoded (`"a"` and `"\u0061"` are the same name).
struct StrictJSON: Sendable {
    /// The raw text of each member value of the top-level object (whitespace trimmed), by name.
    var topLevelValues: [String: String] = [:]

    /// Scan `bytes`; throws ``ServiceError`` `DuplicateJSONKey` naming the member (at most 64 characters of it).
    init(_ bytes: [UInt8], what: String) throws {
        /// An open object (its names so far, whether a name comes next) or array.
        struct Frame {
            var names: Set<String>?
            var expectsName = false
        }
        var stack: [Frame] = []
        var pendingName: String?
        var valueStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(Frame(names: [], expectsName: true))
            case UInt8(ascii: "["):
                stack.append(Frame(names: nil))
            case UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ","):
                if stack.count == 1, byte != UInt8(ascii: "]"), let name = pendingName {
                    topLevelValues[name] = String(decoding: bytes[valueStart..<index], as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    pendingName = nil
                }
                if byte == UInt8(ascii: ",") {
                    if stack.last?.names != nil { stack[stack.count - 1].expectsName = true }
                } else if !stack.isEmpty {
                    stack.removeLast()
                }
            case UInt8(ascii: ":"):
                if stack.count == 1 { valueStart = index + 1 }
            case UInt8(ascii: "\""):
                var end = index + 1
                var escaped = false
                while end < bytes.count, !(bytes[end] == UInt8(ascii: "\"") && !escaped) {
                    escaped = !escaped && bytes[end] == UInt8(ascii: "\\")
                    end += 1
                }
                guard end < bytes.count else { return }  // unterminated: the parser refuses it
                if let frame = stack.last, var names = frame.names, frame.expectsName {
                    let raw = Array(bytes[index...end])
                    let name =
                        raw.contains(UInt8(ascii: "\\"))
                        ? (try? JSONDecoder().decode(String.self, from: Data(raw)))
                            ?? String(decoding: raw, as: UTF8.self)
                        : String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
                    guard names.insert(name).inserted else {
                        throw ServiceError.badRequest(
                            "DuplicateJSONKey",
                            "\(what) names the member \(ServiceError.quote(String(name.prefix(64)))) more than once"
                        )
                    }
                    stack[stack.count - 1].names = names
                    stack[stack.count - 1].expectsName = false
                    if stack.count == 1 { pendingName = name }
                }
                index = end
            default:
                break
            }
            index += 1
        }
    }
}
