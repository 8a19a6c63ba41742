import Foundation

extension ReleasePolicy {
    /// One open container of the scan.
    private struct Frame {
        /// The container's JSON path.
        var path: String
        /// Whether it is an object (else an array).
        var isObject: Bool
        /// An object's members seen so far.
        var keys: Set<String> = []
        /// An object's member being read; an array's element index.
        var key: String?
        var index = 0
        /// In an object: the next string is a member name.
        var expectsKey = true

        /// The path of the value being read in this container.
        var childPath: String {
            if isObject {
                let name = key ?? "?"
                return path == "$" ? name : "\(path).\(name)"
            }
            return "\(path)[\(index)]"
        }
    }

    /// Scans the policy's bytes before `JSONDecoder` sees them: refuses nesting deeper than the grammar can use
    /// (a stack of thousands of `[` must not reach a recursive parser) and duplicate object members (decoders
    /// disagree on which one wins). Strings are skipped with their escapes; malformed JSON is left to the decoder.
    static func prescan(_ bytes: Data) throws(ReleasePolicyError) {
        // Each policy level is an object and a list; the top object, a claim condition's object and its value add 3.
        let limit = 2 * maximumDepth + 3
        let bytes = [UInt8](bytes)
        var stack: [Frame] = []
        var position = 0
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                let start = position
                position += 1
                while position < bytes.count, bytes[position] != UInt8(ascii: "\"") {
                    position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard position < bytes.count else { return }  // Unterminated: the decoder reports it.
                guard var top = stack.last, top.isObject, top.expectsKey else { break }
                let literal = Data(bytes[start...position])
                guard let key = try? JSONDecoder().decode(String.self, from: literal) else { return }
                guard top.keys.insert(key).inserted else {
                    throw ReleasePolicyError(
                        .duplicateMember,
                        at: top.path,
                        "duplicate member \(Parser.quoted(key))"
                    )
                }
                top.key = key
                top.expectsKey = false
                stack[stack.count - 1] = top
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let path = stack.last?.childPath ?? "$"
                guard stack.count < limit else {
                    throw ReleasePolicyError(.tooDeep, at: path, "JSON nests deeper than \(limit) levels")
                }
                stack.append(Frame(path: path, isObject: byte == UInt8(ascii: "{")))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                guard !stack.isEmpty else { break }
                if stack[stack.count - 1].isObject {
                    stack[stack.count - 1].expectsKey = true
                } else {
                    stack[stack.count - 1].index += 1
                }
            default:
                break
            }
            position += 1
        }
    }
}
