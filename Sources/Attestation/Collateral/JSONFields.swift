internal import EnclaveCore
internal import Foundation

/// Typed access to a JSON object of a collateral document, read from a `JSONTape`. Every field is type-checked;
/// unknown fields are ignored (Intel adds fields within a version).
struct JSONFields {
    let tape: JSONTape
    /// The object's token.
    let index: Int
    /// What the object is, for error messages: `base`, or `base.key` for a nested object (made only when needed).
    private let base: String
    private let key: String?

    var what: String { key.map { "\(base).\($0)" } ?? base }

    init(bytes: [UInt8], what: String) throws(EnclaveError) {
        let tape = try JSONTape.document(bytes)
        guard tape.tokens[0].kind == .object else { throw .malformedInput("\(what) is not a JSON object") }
        self.init(tape, 0, what: what)
    }

    private init(_ tape: JSONTape, _ index: Int, what: String, key: String? = nil) {
        self.tape = tape
        self.index = index
        self.base = what
        self.key = key
    }

    /// The token of the member `key`, if there is one.
    private func member(_ key: String) -> JSONTape.Token? {
        tape.member(key, of: index).map { tape.tokens[$0] }
    }

    func has(_ key: String) -> Bool {
        guard let token = member(key) else { return false }
        return token.kind != .null
    }

    /// The raw or escaped string token of `key`.
    private func stringToken(_ key: String) -> JSONString? {
        tape.member(key, of: index).flatMap { tape.string(at: $0) }
    }

    func string(_ key: String) throws(EnclaveError) -> String {
        guard let token = stringToken(key), let value = token.decoded() else {
            throw .malformedInput("\(what) lacks the string \(key)")
        }
        return value
    }

    /// The UTF-8 bytes of the string `key` (`string(_:)`'s value, without making a `String`).
    func bytes(_ key: String) throws(EnclaveError) -> [UInt8] {
        guard let token = stringToken(key), let value = token.decodedUTF8() else {
            throw .malformedInput("\(what) lacks the string \(key)")
        }
        return value
    }

    func optionalString(_ key: String) throws(EnclaveError) -> String? {
        has(key) ? try string(key) : nil
    }

    func int(_ key: String) throws(EnclaveError) -> Int {
        guard let token = member(key), token.kind == .integer else {
            throw .malformedInput("\(what) lacks the integer \(key)")
        }
        return token.value
    }

    func optionalInt(_ key: String) throws(EnclaveError) -> Int? {
        has(key) ? try int(key) : nil
    }

    func hex(_ key: String, count: Int) throws(EnclaveError) -> [UInt8] {
        guard let bytes = Self.hex(try bytes(key)), bytes.count == count else {
            throw .malformedInput("\(what): \(key) is not \(count) bytes of hexadecimal")
        }
        return bytes
    }

    func date(_ key: String) throws(EnclaveError) -> Date {
        guard let date = Collateral.parseDate(try string(key)) else {
            throw .malformedInput("\(what): \(key) is not an ISO 8601 date")
        }
        return date
    }

    /// A TCB status, compared on the raw bytes (no string is made for the common, unescaped spelling).
    func status(_ key: String) throws(EnclaveError) -> TCBStatus {
        guard let value = tape.member(key, of: index), let token = tape.string(at: value) else {
            throw .malformedInput("\(what) lacks the string \(key)")
        }
        for status in TCBStatus.allCases where tape.string(at: value, equals: status.rawValue) { return status }
        throw .malformedInput("\(what): unknown TCB status \(token.decoded() ?? "(not text)")")
    }

    func object(_ key: String) throws(EnclaveError) -> JSONFields {
        guard let value = tape.member(key, of: index), tape.tokens[value].kind == .object else {
            throw .malformedInput("\(what) lacks the object \(key)")
        }
        return JSONFields(tape, value, what: what, key: key)
    }

    func objects(_ key: String) throws(EnclaveError) -> [JSONFields] {
        guard let value = tape.member(key, of: index), tape.tokens[value].kind == .array else {
            throw .malformedInput("\(what) lacks the array \(key)")
        }
        let what = self.what
        var result: [JSONFields] = []
        for element in tape.elements(of: value) {
            guard tape.tokens[element].kind == .object else {
                throw .malformedInput("\(what).\(key) holds a non-object")
            }
            result.append(JSONFields(tape, element, what: what))
        }
        return result
    }

    /// The `svn` members of an array of component objects (`[{"svn": 2, "category": …}, …]`).
    func svns(_ key: String) throws(EnclaveError) -> [Int] {
        guard let value = tape.member(key, of: index), tape.tokens[value].kind == .array else {
            throw .malformedInput("\(what) lacks the array \(key)")
        }
        var result: [Int] = []
        result.reserveCapacity(16)
        var element = value + 1
        while element < tape.tokens[value].next {
            guard let svn = tape.member("svn", of: element), tape.tokens[svn].kind == .integer else {
                throw .malformedInput("\(what).\(key) holds a component without an integer svn")
            }
            result.append(tape.tokens[svn].value)
            element = tape.tokens[element].next
        }
        return result
    }

    func strings(_ key: String) throws(EnclaveError) -> [String] {
        guard has(key) else { return [] }
        guard let value = tape.member(key, of: index), tape.tokens[value].kind == .array else {
            throw .malformedInput("\(what): \(key) is not strings")
        }
        var result: [String] = []
        var element = value + 1
        while element < tape.tokens[value].next {
            guard let token = tape.string(at: element), let text = token.decoded() else {
                throw .malformedInput("\(what): \(key) is not strings")
            }
            result.append(text)
            element = tape.tokens[element].next
        }
        return result
    }

    /// Hexadecimal (either case, no separators) as `Hex.decode(_:)` reads it; `nil` on any other byte or an odd
    /// length.
    static func hex(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        return text.withUnsafeBufferPointer { input -> [UInt8]? in
            var valid = true
            let output = [UInt8](unsafeUninitializedCapacity: input.count / 2) { out, written in
                var index = 0
                while index < input.count {
                    let high = nibble(input[index])
                    let low = nibble(input[index + 1])
                    guard high | low < 0x10 else {
                        valid = false
                        break
                    }
                    out[index / 2] = high << 4 | low
                    index += 2
                }
                written = valid ? input.count / 2 : 0
            }
            return valid ? output : nil
        }
    }

    /// The value of a hexadecimal digit, or 0xFF (without branches on the digit's kind).
    @inline(__always)
    private static func nibble(_ c: UInt8) -> UInt8 {
        let digit = c &- UInt8(ascii: "0")
        let letter = (c | 0x20) &- UInt8(ascii: "a")
        if digit < 10 { return digit }
        return letter < 6 ? letter + 10 : 0xFF
    }
}
