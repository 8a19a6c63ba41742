import Foundation

@testable import Attestation
@testable import EnclaveCore

/// The strict JSON reader collateral and vTPM evidence are read with. Every string it accepts must decode, and
/// nothing it accepts may be refused by Foundation's reader (which is laxer: duplicate keys, deeper nesting).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let value = try? JSONValue(parsing: bytes) else { return 0 }
    check(value, depth: 0)
    guard value == value else { fatalError("a JSON value differs from itself") }
    _ = value.hashValue
    guard (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil else {
        fatalError("the strict JSON reader accepted what Foundation refuses")
    }
    return 0
}

private func check(_ value: JSONValue, depth: Int) {
    guard depth <= JSONValue.maxDepth else { fatalError("JSON nesting beyond the limit was accepted") }
    switch value {
    case .string(let token):
        guard token.decoded() != nil else { fatalError("an accepted JSON string does not decode") }
    case .array(let elements):
        for element in elements { check(element, depth: depth + 1) }
    case .object(let members):
        for member in members {
            guard member.key.decoded() != nil else { fatalError("an accepted JSON key does not decode") }
            check(member.value, depth: depth + 1)
        }
    case .integer(let number):
        guard number.magnitude <= 1 << 53 else { fatalError("an integer outside ±2^53 was kept as an integer") }
    case .double(let number):
        guard number.isFinite else { fatalError("a JSON number is not finite") }
    case .null, .bool:
        break
    }
}
