import EnclaveCore
import Foundation

/// A message using every shape the binary codec has: fixed and variable integers, floats, strings, data, optionals,
/// arrays, dictionaries with string and integer keys, nested and recursive messages, enums with payloads.
struct Message: Codable, Sendable {
    enum Kind: String, Codable, Sendable { case call, result, failure }
    enum Payload: Codable, Sendable {
        case none
        case text(String)
        case pair(Int32, [UInt8])
        case nested(Nested)
    }
    struct Nested: Codable, Sendable {
        var id: UInt64
        var scores: [String: Double]
        var labels: [Int: String]?
    }

    var flag: Bool
    var small: Int8
    var byte: UInt8
    var short: Int16
    var word: UInt32
    var large: Int64
    var integer: Int
    var unsigned: UInt
    var real: Double
    var single: Float
    var text: String
    var data: Data
    var bytes: [UInt8]
    var optional: String?
    var kind: Kind
    var payload: Payload
    var list: [Nested]
    var children: [Message]
    var sets: Set<Int16>
}

private let samples: [Message] = {
    let nested = Message.Nested(id: 1 << 40, scores: ["a": 1.5, "b": -0.0], labels: [1: "one", -2: "minus two"])
    let leaf = Message(
        flag: true,
        small: -8,
        byte: 200,
        short: -300,
        word: 70_000,
        large: .min,
        integer: -1,
        unsigned: .max,
        real: .pi,
        single: 2.5,
        text: "héllo",
        data: Data([0, 1, 2]),
        bytes: [9, 8, 7],
        optional: nil,
        kind: .call,
        payload: .none,
        list: [],
        children: [],
        sets: [1, 2]
    )
    var parent = leaf
    parent.optional = "present"
    parent.kind = .failure
    parent.payload = .nested(nested)
    parent.list = [nested, Message.Nested(id: 0, scores: [:], labels: nil)]
    parent.children = [leaf, leaf]
    var other = leaf
    other.payload = .pair(-5, [1, 2, 3])
    other.text = ""
    var textual = leaf
    textual.payload = .text("payload")
    return [leaf, parent, other, textual]
}()

/// Write encoded samples into `FUZZ_SEED_DIR` (Scripts/fuzz.sh sets it to the target's corpus): the seeds follow
/// the current encoding without files in the repository.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_SEED_DIR"] else { return 0 }
    for (index, sample) in samples.enumerated() {
        guard let bytes = try? BinaryEncoder().encode(sample) else { fatalError("a seed sample does not encode") }
        FileManager.default.createFile(atPath: "\(directory)/seed-\(index)", contents: Data(bytes))
    }
    for (index, value) in [[String: [Int]]](arrayLiteral: ["k": [1, 2]], [:]).enumerated() {
        let bytes = (try? BinaryEncoder().encode(value)) ?? []
        FileManager.default.createFile(atPath: "\(directory)/seed-map-\(index)", contents: Data(bytes))
    }
    return 0
}

/// Decode hostile bytes as a `Message` (and as a few plain types); whatever decodes must encode and decode again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let decoder = BinaryDecoder(maxMessageSize: 1 << 20, maxDepth: 32)
    if let message = try? decoder.decode(Message.self, from: bytes) {
        roundTrip(message, decoder)
    }
    if let value = try? decoder.decode([String: [Int]].self, from: bytes) { roundTrip(value, decoder) }
    if let value = try? decoder.decode([Int64?].self, from: bytes[...]) { roundTrip(value, decoder) }
    if let value = try? decoder.decode(String.self, from: bytes) { roundTrip(value, decoder) }
    return 0
}

private func roundTrip<T: Codable>(_ value: T, _ decoder: BinaryDecoder) {
    guard let encoded = try? BinaryEncoder(maxMessageSize: 4 << 20, maxDepth: 32).encode(value) else {
        fatalError("a decoded \(T.self) does not encode")
    }
    do {
        _ = try decoder.decode(T.self, from: encoded)
    } catch {
        fatalError("a re-encoded \(T.self) does not decode: \(error)")
    }
}
