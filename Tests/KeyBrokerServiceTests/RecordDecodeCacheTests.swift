import AttestationAPI
import Foundation
import KeyBrokerInterface
import Synchronization
import TestSupport
import Testing

@testable import KeyBrokerService

/// Decoded records are memoized by their exact text only (issue 12 item 12): the store is read on every request, so
/// a record changed by any instance is decoded anew at once; text that fails to decode is never kept.
@Suite("KeyBrokerService: record decode cache")
struct RecordDecodeCacheTests {
    static func stored(blob: UInt8, enabled: Bool = true, policy: [UInt8]? = nil) -> StoredKeyVersion {
        StoredKeyVersion(
            key: StoredKey(
                name: "cached",
                version: String(repeating: "a", count: 32),
                type: .aes256,
                keyOperations: ["wrapKey", "unwrapKey"],
                attributes: BrokerKeyAttributes(exportable: policy != nil, releasePolicy: policy, immutable: false),
                publicKey: nil,
                blob: [UInt8](repeating: blob, count: 40)
            ),
            attributes: KeyAttributes(enabled: enabled, exportable: policy != nil),
            tags: nil
        )
    }

    @Test func aChangedRecordIsReadAsChangedAtOnce() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let first = Self.stored(blob: 1, policy: Array(#"{"version":"1.0.0"}"#.utf8))
        #expect(try await store.insertVersion(first, created: Date()))
        for _ in 0..<3 { #expect(try await store.version(name: "cached", version: first.version) == first) }
        // Another policy, then disabled: each read answers the record as it is now.
        let tightened = Self.stored(blob: 1, policy: Array(#"{"version":"1.0.0","x":1}"#.utf8))
        #expect(try await store.replaceVersion(tightened))
        #expect(try await store.version(name: "cached", version: first.version) == tightened)
        let disabled = Self.stored(blob: 1, enabled: false, policy: tightened.key.attributes.releasePolicy)
        #expect(try await store.replaceVersion(disabled))
        #expect(try await store.version(name: "cached", version: first.version)?.attributes.enabled == false)
        // Deleted: no record, whatever was decoded before.
        #expect(try await store.setDeleted(name: "cached", at: Date()))
        #expect(try await store.version(name: "cached", version: first.version) == nil)
        try await store.close()
    }

    @Test func decodesOncePerTextAndNeverKeepsAFailure() throws {
        let cache = RecordDecodeCache<Int>(capacity: 4, byteCapacity: 64)
        let calls = Mutex(0)
        func decode(_ text: String) throws -> Int {
            calls.withLock { $0 += 1 }
            guard let value = Int(text) else { throw CancellationError() }
            return value
        }
        #expect(try cache.value(for: "1", decode: decode) == 1)
        #expect(try cache.value(for: "1", decode: decode) == 1)
        #expect(calls.withLock { $0 } == 1)
        #expect(try cache.value(for: "2", decode: decode) == 2)
        #expect(calls.withLock { $0 } == 2)
        for _ in 0..<2 { #expect(throws: CancellationError.self) { try cache.value(for: "x", decode: decode) } }
        #expect(calls.withLock { $0 } == 4)
        // Bounded by count and by bytes; a text over the byte bound is decoded and not kept.
        for value in 10..<30 { #expect(try cache.value(for: String(value), decode: decode) == value) }
        #expect(cache.count <= 4)
        let long = String(repeating: "7", count: 18)
        #expect(try cache.value(for: long, decode: decode) == 777_777_777_777_777_777)
        #expect(cache.count <= 4)
        let large = String(repeating: "0", count: 100) + "5"
        let before = calls.withLock { $0 }
        #expect(try cache.value(for: large, decode: decode) == 5)
        #expect(try cache.value(for: large, decode: decode) == 5)
        #expect(calls.withLock { $0 } == before + 2)
    }
}
