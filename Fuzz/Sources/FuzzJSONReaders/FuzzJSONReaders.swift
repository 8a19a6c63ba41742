import AttestationAPI
import CleanRoom
import Foundation
import KeyBroker

@testable import Attestation
@testable import EnclaveCore

/// The three readers on the one shared tokenizer (EnclaveCore's `JSONTape`): Attestation's collateral tape, the key
/// broker's `TokenJSON` and the clean room's `CanonicalJSON`. Their rules nest (canonical ⊂ token ⊂ RFC 8259), so
/// what a stricter one accepts a laxer one must accept with the same value, Foundation must accept everything any
/// of them accepts, and the canonical encoding must read back as itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let tape = try? JSONTape(parsing: bytes, rules: .collateral)
    let token = try? TokenJSON.parse(bytes, maximumDepth: 64)
    // Same grammar and keys; the tape counts scalars as a level, TokenJSON only containers.
    if tape != nil, token == nil { fatalError("TokenJSON refused what the collateral tape accepts") }
    if (try? TokenJSON.parse(bytes, maximumDepth: 63)) != nil, tape == nil {
        fatalError("the collateral tape refused what TokenJSON accepts 63 deep")
    }
    if token != nil, (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) == nil {
        fatalError("TokenJSON accepted what Foundation refuses")
    }
    guard let canonical = try? CanonicalJSON.parse(bytes) else { return 0 }
    guard let read = try? TokenJSON.parse(bytes, maximumDepth: CanonicalJSON.maxDepth + 1) else {
        fatalError("TokenJSON refused what CanonicalJSON accepts")
    }
    guard same(canonical, read) else { fatalError("CanonicalJSON and TokenJSON read different values") }
    let encoded = canonical.canonicalBytes
    guard (try? CanonicalJSON.parse(encoded)) == canonical else {
        fatalError("the canonical encoding reads back wrong")
    }
    if (try? CanonicalJSON.parseCanonical(bytes)) != nil, encoded != bytes {
        fatalError("parseCanonical accepted bytes that are not the canonical encoding")
    }
    return 0
}

private func same(_ canonical: CanonicalJSON, _ token: TokenValue) -> Bool {
    switch (canonical, token) {
    case (.bool(let a), .bool(let b)): return a == b
    case (.integer(let a), .integer(let b)): return Int(a) == b
    case (.string(let a), .string(let b)): return Array(a.utf8) == Array(b.utf8)
    case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
    case (.object(let a), .object(let b)):
        return a.count == b.count && a.allSatisfy { key, value in b[key].map { same(value, $0) } ?? false }
    default: return false
    }
}
