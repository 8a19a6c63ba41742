internal import EnclaveCore
internal import Foundation

/// Typed access to a JSON object of a collateral document. Every field is type-checked; unknown fields are ignored
/// (Intel adds fields within a version).
struct JSONFields {
    let object: JSONValue
    let what: String

    init(bytes: [UInt8], what: String) throws(EnclaveError) {
        let object = try JSONValue(parsing: bytes)
        guard case .object = object else { throw .malformedInput("\(what) is not a JSON object") }
        self.init(object, what: what)
    }

    init(_ object: JSONValue, what: String) {
        self.object = object
        self.what = what
    }

    func has(_ key: String) -> Bool {
        guard let value = object[key] else { return false }
        return value != .null
    }

    func string(_ key: String) throws(EnclaveError) -> String {
        guard case .string(let token) = object[key], let value = token.decoded() else {
            throw .malformedInput("\(what) lacks the string \(key)")
        }
        return value
    }

    func optionalString(_ key: String) throws(EnclaveError) -> String? {
        has(key) ? try string(key) : nil
    }

    func int(_ key: String) throws(EnclaveError) -> Int {
        guard case .integer(let number) = object[key] else { throw .malformedInput("\(what) lacks the integer \(key)") }
        return number
    }

    func optionalInt(_ key: String) throws(EnclaveError) -> Int? {
        has(key) ? try int(key) : nil
    }

    func hex(_ key: String, count: Int) throws(EnclaveError) -> [UInt8] {
        guard let bytes = Hex.decode(try string(key)), bytes.count == count else {
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
        guard case .string(let token) = object[key] else { throw .malformedInput("\(what) lacks the string \(key)") }
        for status in TCBStatus.allCases where token.equals(status.rawValue) { return status }
        throw .malformedInput("\(what): unknown TCB status \(token.decoded() ?? "(not text)")")
    }

    func object(_ key: String) throws(EnclaveError) -> JSONFields {
        guard let value = object[key], case .object = value else {
            throw .malformedInput("\(what) lacks the object \(key)")
        }
        return JSONFields(value, what: "\(what).\(key)")
    }

    func objects(_ key: String) throws(EnclaveError) -> [JSONFields] {
        guard case .array(let values) = object[key] else { throw .malformedInput("\(what) lacks the array \(key)") }
        var result: [JSONFields] = []
        result.reserveCapacity(values.count)
        for value in values {
            guard case .object = value else { throw .malformedInput("\(what).\(key) holds a non-object") }
            result.append(JSONFields(value, what: what))
        }
        return result
    }

    /// The `svn` members of an array of component objects (`[{"svn": 2, "category": …}, …]`).
    func svns(_ key: String) throws(EnclaveError) -> [Int] {
        guard case .array(let values) = object[key] else { throw .malformedInput("\(what) lacks the array \(key)") }
        var result: [Int] = []
        result.reserveCapacity(values.count)
        for value in values {
            guard case .integer(let svn) = value["svn"] else {
                throw .malformedInput("\(what).\(key) holds a component without an integer svn")
            }
            result.append(svn)
        }
        return result
    }

    func strings(_ key: String) throws(EnclaveError) -> [String] {
        guard has(key) else { return [] }
        guard case .array(let values) = object[key] else { throw .malformedInput("\(what): \(key) is not strings") }
        var result: [String] = []
        for value in values {
            guard case .string(let token) = value, let text = token.decoded() else {
                throw .malformedInput("\(what): \(key) is not strings")
            }
            result.append(text)
        }
        return result
    }
}
