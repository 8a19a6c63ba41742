import EnclaveCore
import Foundation
import Testing

/// The CPU time this thread spends in `body` (user and system: page faults of a large reservation count). Unlike
/// the wall clock it does not grow when the machine is loaded (CI runs the whole suite in parallel on two cores, where
/// a step of 10 ms can take seconds of wall time), only when the work does.
func threadCPUTime(_ body: () throws -> Void) rethrows -> Duration {
    func now() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
    let start = now()
    try body()
    return now() - start
}

struct Inner: Codable, Equatable {
    var flag: Bool
    var ratio: Double
    var tags: [String]
}

enum Color: String, Codable, Equatable { case red, green }

struct Sample: Codable, Equatable {
    var name: String
    var count: Int
    var small: Int8
    var unsigned: UInt64
    var negative: Int32
    var float: Float
    var optional: String?
    var missing: Int?
    var blob: Data
    var bytes: [UInt8]
    var nested: Inner
    var list: [Inner]
    var map: [String: Int]
    var matrix: [[Int]]
    var optionals: [Int?]
    var color: Color
}

@Suite("Binary codec")
struct BinaryCodecTests {
    static let sample = Sample(
        name: "Grüße 👋",
        count: -123_456_789,
        small: -128,
        unsigned: .max,
        negative: .min,
        float: 1.5,
        optional: "present",
        missing: nil,
        blob: Data([0, 1, 2, 255]),
        bytes: Array(0...255),
        nested: Inner(flag: true, ratio: -0.25, tags: ["a", ""]),
        list: [Inner(flag: false, ratio: .infinity, tags: [])],
        map: ["x": 1, "y": -1],
        matrix: [[1, 2], [], [3]],
        optionals: [1, nil, 3],
        color: .green
    )

    @Test func roundTripsEveryKindOfValue() throws {
        let bytes = try BinaryEncoder().encode(Self.sample)
        let decoded = try BinaryDecoder().decode(Sample.self, from: bytes)
        #expect(decoded == Self.sample)
        // Deterministic: encoding the decoded value yields the same bytes.
        #expect(try BinaryEncoder().encode(decoded) == bytes)
    }

    @Test func roundTripsTopLevelValues() throws {
        let encoder = BinaryEncoder()
        let decoder = BinaryDecoder()
        #expect(try decoder.decode(String.self, from: encoder.encode("hi")) == "hi")
        #expect(try decoder.decode(Int.self, from: encoder.encode(Int.min)) == Int.min)
        #expect(try decoder.decode([UInt8].self, from: encoder.encode([UInt8]())) == [])
        #expect(try decoder.decode(String?.self, from: encoder.encode(String?.none)) == nil)
        #expect(try decoder.decode(String?.self, from: encoder.encode(String?.some("x"))) == "x")
        #expect(try decoder.decode(Empty.self, from: encoder.encode(Empty())) == Empty())
    }

    @Test func byteBuffersAreOneBlock() throws {
        let payload = [UInt8](repeating: 7, count: 4096)
        let bytes = try BinaryEncoder().encode(payload)
        // Presence byte, a two-byte length, then the payload: no per-element overhead.
        #expect(bytes.count == 1 + 2 + 4096)
        #expect(try BinaryEncoder().encode(Data(payload)) == bytes)
    }

    @Test func everyTruncatedPrefixIsRejected() throws {
        let bytes = try BinaryEncoder().encode(Self.sample)
        for length in 0..<bytes.count {
            #expect(throws: (any Error).self, "prefix of \(length) bytes") {
                try BinaryDecoder().decode(Sample.self, from: Array(bytes.prefix(length)))
            }
        }
    }

    @Test func trailingBytesAreRejected() throws {
        let bytes = try BinaryEncoder().encode(Self.sample)
        #expect(throws: EnclaveError.malformedInput("")) {
            try BinaryDecoder().decode(Sample.self, from: bytes + [0])
        }
        #expect(throws: EnclaveError.malformedInput("")) {
            try BinaryDecoder().decode(UInt16.self, from: BinaryEncoder().encode(UInt16(5)) + [1])
        }
    }

    @Test func absurdLengthsAreRejectedWithoutAllocating() throws {
        // A byte block claiming 2^62 bytes, an array claiming 2^40 elements, a string claiming 2^31 bytes.
        var huge: [UInt8] = [1]
        Varint.append(1 << 62, to: &huge)
        #expect(throws: EnclaveError.malformedInput("")) { try BinaryDecoder().decode([UInt8].self, from: huge) }
        var array: [UInt8] = [1]
        Varint.append(1 << 40, to: &array)
        #expect(throws: EnclaveError.malformedInput("")) { try BinaryDecoder().decode([Int].self, from: array) }
        var string: [UInt8] = [1]
        Varint.append(1 << 31, to: &string)
        #expect(throws: EnclaveError.malformedInput("")) { try BinaryDecoder().decode(String.self, from: string) }
    }

    /// A hostile count with almost no bytes behind it fails at once, whatever container it announces: the count is
    /// checked against the bytes that remain before anything is reserved for it.
    @Test func hugeCountsWithFewBytesFailFast() throws {
        struct Keyed: Codable { var a: Int }
        var count: [UInt8] = [1]
        Varint.append(1 << 40, to: &count)
        let input = count + [UInt8](repeating: 1, count: 10 - count.count)
        #expect(input.count == 10)
        let elapsed = threadCPUTime {
            for _ in 0..<1000 {
                #expect(throws: EnclaveError.malformedInput("")) { try BinaryDecoder().decode([Int].self, from: input) }
                #expect(throws: EnclaveError.malformedInput("")) {
                    try BinaryDecoder().decode([String: Int].self, from: input)
                }
                #expect(throws: EnclaveError.malformedInput("")) { try BinaryDecoder().decode(Keyed.self, from: input) }
                #expect(throws: EnclaveError.malformedInput("")) {
                    try BinaryDecoder().decode([[UInt8]].self, from: input)
                }
            }
        }
        #expect(elapsed < .seconds(2), "4000 rejections took \(elapsed) of CPU time")
    }

    /// A count that the remaining bytes could just hold, with the first element malformed: refused quickly, without
    /// first reserving memory for every announced element (16 bytes each for 2 bytes of input).
    @Test func plausibleCountWithAMalformedFirstElementFailsFast() throws {
        let elements = 4 << 20
        var input: [UInt8] = [1]
        Varint.append(UInt64(elements), to: &input)
        input += [0]  // an element of length zero: malformed
        input += [UInt8](repeating: 1, count: 2 * elements - 1)
        let elapsed = threadCPUTime {
            for _ in 0..<50 {
                #expect(throws: EnclaveError.malformedInput("")) {
                    try BinaryDecoder().decode([Bool].self, from: input)
                }
            }
        }
        #expect(elapsed < .seconds(2), "50 rejections took \(elapsed) of CPU time")
    }

    @Test func rejectsInvalidPrimitives() throws {
        let decoder = BinaryDecoder()
        #expect(throws: EnclaveError.malformedInput("")) { try decoder.decode(Bool.self, from: [1, 2]) }
        #expect(throws: EnclaveError.malformedInput("")) { try decoder.decode(String.self, from: [1, 2, 0xC3, 0x28]) }
        // 300 does not fit in UInt8's varint-free byte, nor in Int8 via zig-zag for Int16 range checks.
        #expect(throws: EnclaveError.malformedInput("")) {
            try decoder.decode(UInt16.self, from: BinaryEncoder().encode(UInt32(70_000)))
        }
        // Non-minimal varint (0x80 0x00 encodes zero in two bytes).
        #expect(throws: EnclaveError.malformedInput("")) { try decoder.decode(UInt32.self, from: [1, 0x80, 0x00]) }
        // Presence byte other than 0 or 1.
        #expect(throws: EnclaveError.malformedInput("")) { try decoder.decode(Int.self, from: [2, 0]) }
        // Overlong varint (11 bytes).
        #expect(throws: EnclaveError.malformedInput("")) {
            try decoder.decode(UInt64.self, from: [1] + [UInt8](repeating: 0xFF, count: 10) + [1])
        }
    }

    @Test func rejectsDuplicateKeys() throws {
        struct One: Codable { var a: Int }
        var bytes: [UInt8] = [1, 2]  // present, two fields
        for _ in 0..<2 { bytes += [1, UInt8(ascii: "a"), 2, 1, 2] }  // key "a", slot of 2 bytes: present, zigzag(1)
        #expect(throws: EnclaveError.malformedInput("")) { try BinaryDecoder().decode(One.self, from: bytes) }
        let single: [UInt8] = [1, 1, 1, UInt8(ascii: "a"), 2, 1, 2]
        #expect(try BinaryDecoder().decode(One.self, from: single).a == 1)  // control: the same field once
    }

    @Test func enforcesSizeAndDepthLimits() throws {
        let big = [UInt8](repeating: 0, count: 2048)
        #expect(throws: EnclaveError.limitExceeded("")) { try BinaryEncoder(maxMessageSize: 1024).encode(big) }
        let bytes = try BinaryEncoder().encode(big)
        #expect(throws: EnclaveError.limitExceeded("")) {
            try BinaryDecoder(maxMessageSize: 1024).decode([UInt8].self, from: bytes)
        }
        indirect enum Tree: Codable { case leaf, node(Tree) }
        var deep = Tree.leaf
        for _ in 0..<100 { deep = .node(deep) }
        #expect(throws: EnclaveError.limitExceeded("")) { try BinaryEncoder(maxDepth: 32).encode(deep) }
        let encoded = try BinaryEncoder(maxDepth: 1000).encode(deep)
        #expect(throws: EnclaveError.limitExceeded("")) {
            try BinaryDecoder(maxDepth: 32).decode(Tree.self, from: encoded)
        }
        _ = try BinaryDecoder(maxDepth: 1000).decode(Tree.self, from: encoded)
    }

    @Test func randomMutationsNeverCrash() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = try BinaryEncoder().encode(Self.sample)
        for _ in 0..<2000 {
            var mutated = bytes
            let index = Int.random(in: 0..<mutated.count, using: &generator)
            mutated[index] = UInt8.random(in: 0...255, using: &generator)
            // Either a clean error, or a value that survives another round trip.
            if let value = try? BinaryDecoder().decode(Sample.self, from: mutated) {
                let again = try BinaryDecoder().decode(Sample.self, from: BinaryEncoder().encode(value))
                #expect(again.name == value.name && again.bytes == value.bytes && again.count == value.count)
            }
        }
    }
}
