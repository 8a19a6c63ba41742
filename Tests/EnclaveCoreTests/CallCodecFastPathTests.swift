import EnclaveCore
import Testing

/// The call codec's fast paths (a top-level byte buffer decoded without the decoder's tree, the shared encoding of
/// `Empty`) must accept exactly what the general path accepts, with the same values and errors.
@Suite("Call codec fast paths")
struct CallCodecFastPathTests {
    let decoder = BinaryDecoder()

    /// The general path's outcome for `bytes` as a byte buffer: decoding an optional buffer goes through the
    /// decoder's slot parser (a nil slot aside).
    func general(_ bytes: [UInt8]) -> Result<[UInt8]?, EnclaveError> {
        do {
            return .success(try decoder.decode([UInt8]?.self, from: bytes))
        } catch let error as EnclaveError {
            return .failure(error)
        } catch {
            return .failure(.callFailed("unexpected \(error)"))
        }
    }

    @Test func aTopLevelByteBufferDecodesAsTheGeneralPathDecodesIt() throws {
        var cases: [[UInt8]] = [
            [], [1], [2], [0xFF, 0], [1, 0], [1, 1], [1, 1, 7], [1, 2, 7], [1, 1, 7, 8], [1, 0, 0],
            [1, 0x80], [1, 0x80, 0], [1, 0x81, 0x00, 7],
            [1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        ]
        let long = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        cases.append([1, 0xAC, 0x02] + long)
        cases.append([1, 0xAC, 0x02] + long.dropLast())
        cases.append([1, 0xAC, 0x02] + long + [0])
        for bytes in cases {
            let fast: Result<[UInt8], EnclaveError>
            do {
                fast = .success(try decoder.decode([UInt8].self, from: bytes))
            } catch let error as EnclaveError {
                fast = .failure(error)
            }
            switch (general(bytes), fast) {
            case (.success(let value?), .success(let decoded)):
                #expect(value == decoded, "\(bytes)")
            case (.failure(let expected), .failure(let error)):
                #expect(error.code == expected.code, "\(bytes)")
                #expect(error.reason == expected.reason, "\(bytes)")
            case (.success(nil), .failure(let error)):
                // A nil slot is a value for an optional only.
                #expect(error.code == .malformedInput)
                #expect(error.reason == "unexpected nil")
            default:
                Issue.record("\(bytes): the general path and the fast path disagree")
            }
        }
        #expect(try decoder.decode([UInt8].self, from: [1, 0xAC, 0x02] + long) == long)
    }

    @Test func theSizeLimitComesFirst() {
        let small = BinaryDecoder(maxMessageSize: 4)
        #expect(throws: EnclaveError.limitExceeded("")) { try small.decode([UInt8].self, from: [1, 3, 1, 2, 3]) }
        #expect(throws: Never.self) { try small.decode([UInt8].self, from: [1, 2, 1, 2]) }
    }

    @Test func emptyHasOneSharedEncoding() throws {
        let encoder = BinaryEncoder()
        #expect(try encoder.encode(Empty()) == BinaryEncoder.emptyEncoding)
        #expect(try encoder.encodeWithoutShortcuts(Empty()) == BinaryEncoder.emptyEncoding)
        #expect(BinaryEncoder.emptyEncoding == [1, 0])
        var copy = try encoder.encode(Empty())
        copy.append(9)
        #expect(BinaryEncoder.emptyEncoding == [1, 0])
    }
}
