internal import EnclaveCore

/// A parsed JSON value, as a tree: read by EnclaveCore's `JSONTape` (strict RFC 8259: one value, no trailing bytes, UTF-8, escapes
/// including surrogate pairs, no duplicate keys, nesting capped) rather than Foundation's `JSONDecoder` and
/// `JSONSerialization` (which bridges every value to an `NSObject` on Linux and took most of a full quote
/// verification's time on Intel's TCB info). Collateral is read from the tape directly; the tree serves the Azure
/// vTPM evidence.
enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    /// Integral numbers within ±2^53; other numbers are kept as `double`.
    case integer(Int)
    case double(Double)
    case string(JSONString)
    case array([JSONValue])
    /// Members in document order (keys are unique). Collateral objects are small: a list beats a dictionary.
    case object([(key: JSONString, value: JSONValue)])

    /// The member named `key` of an object.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key.equals(key) }?.value
    }

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count
                && a.allSatisfy { member in b.contains { $0.key == member.key && $0.value == member.value } }
        default: return false
        }
    }

    func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .integer(let value): hasher.combine(value)
        case .double(let value): hasher.combine(value)
        case .string(let value): hasher.combine(value)
        case .array(let value): hasher.combine(value)
        case .object(let members): hasher.combine(members.count)
        }
    }

    /// The deepest nesting accepted.
    static let maxDepth = JSONTape.Rules.collateral.maximumDepth

    /// Parse exactly one JSON value from `bytes`: `JSONTape` reads it (every check and error message is the tape's),
    /// and the tree is built from the tape.
    init(parsing bytes: [UInt8]) throws(EnclaveError) {
        let tape = try JSONTape.document(bytes)
        self.init(tape: tape, at: 0)
    }

    /// The value of the tape's token at `index` (the tape's containers are nested at most `maxDepth` deep).
    private init(tape: JSONTape, at index: Int) {
        let token = tape.tokens[index]
        switch token.kind {
        case .null: self = .null
        case .bool: self = .bool(token.value == 1)
        case .integer: self = .integer(token.value)
        case .double: self = .double(Double(bitPattern: UInt64(UInt(bitPattern: token.value))))
        case .string, .escapedString:
            self = .string(JSONString(raw: tape.bytes[token.start..<token.end], escaped: token.kind == .escapedString))
        case .array: self = .array(tape.elements(of: index).map { JSONValue(tape: tape, at: $0) })
        case .object:
            var members: [(key: JSONString, value: JSONValue)] = []
            var member = index + 1
            while member < token.next {
                let key = tape.tokens[member]
                members.append(
                    (
                        JSONString(raw: tape.bytes[key.start..<key.end], escaped: key.kind == .escapedString),
                        JSONValue(tape: tape, at: member + 1)
                    )
                )
                member = tape.tokens[member + 1].next
            }
            self = .object(members)
        }
    }
}

extension JSONTape {
    /// A collateral or evidence document read under `Rules/collateral`; a refusal is
    /// `EnclaveError/malformedInput(_:)` with the tape's reason and offset.
    static func document(_ bytes: [UInt8]) throws(EnclaveError) -> JSONTape {
        do { return try JSONTape(parsing: bytes, rules: .collateral) } catch {
            throw .malformedInput("JSON: \(error.reason) at offset \(error.offset)")
        }
    }
}
