import AttestationAPI
import AttestationService
import Foundation
import KeyBrokerInterface
import Synchronization
import TestSupport
import Testing

@testable import KeyBrokerService

/// The SQLite store keeps the key versions it read until its next change (issue 12 item 12: a release no longer
/// queries the database for its key), and is the only writer of its database: it holds the data directory's lock.
@Suite("KeyBrokerService: key version cache and data directory lock")
struct KeyVersionCacheTests {
    static let version = String(repeating: "a", count: 32)

    static func stored(
        version: String = Self.version,
        blob: UInt8 = 1,
        enabled: Bool = true,
        policy: String = #"{"version":"1.0.0"}"#
    ) -> StoredKeyVersion {
        StoredKeyVersion(
            key: StoredKey(
                name: "cached",
                version: version,
                type: .aes256,
                keyOperations: ["wrapKey", "unwrapKey"],
                attributes: BrokerKeyAttributes(exportable: true, releasePolicy: Array(policy.utf8), immutable: false),
                publicKey: nil,
                blob: [UInt8](repeating: blob, count: 40)
            ),
            attributes: KeyAttributes(enabled: enabled, exportable: true),
            tags: nil
        )
    }

    @Test func everyChangeThroughTheStoreIsSeenByTheNextRead() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        let first = Self.stored()
        #expect(try await store.version(name: "cached", version: Self.version) == nil)
        #expect(try await store.insertVersion(first, created: Date()))
        for _ in 0..<3 {
            #expect(try await store.version(name: "cached", version: Self.version) == first)
            #expect(try await store.latestVersion(name: "cached") == first)
        }
        #expect(store.keyVersions.count == 2, "both reads are held")
        // A new policy, then disabled: each read answers the record as it is now.
        let tightened = Self.stored(policy: #"{"version":"1.0.0","x":1}"#)
        #expect(try await store.replaceVersion(tightened))
        #expect(try await store.version(name: "cached", version: Self.version) == tightened)
        #expect(try await store.replaceVersion(Self.stored(enabled: false)))
        #expect(try await store.version(name: "cached", version: Self.version)?.attributes.enabled == false)
        #expect(try await store.latestVersion(name: "cached")?.attributes.enabled == false)
        // A new version is the newest at once.
        let second = Self.stored(version: String(repeating: "b", count: 32), blob: 2)
        #expect(try await store.insertVersion(second, created: Date()))
        #expect(try await store.latestVersion(name: "cached") == second)
        // Deleted: no record, whatever was read before; recovered: back; purged: gone.
        #expect(try await store.setDeleted(name: "cached", at: Date()))
        #expect(try await store.version(name: "cached", version: Self.version) == nil)
        #expect(try await store.latestVersion(name: "cached") == nil)
        #expect(try await store.setDeleted(name: "cached", at: nil))
        #expect(try await store.latestVersion(name: "cached") == second)
        #expect(try await store.setDeleted(name: "cached", at: Date()))
        #expect(try await store.purge(name: "cached"))
        #expect(try await store.version(name: "cached", version: second.version) == nil)
        // A failed change (refused by the database) still empties the cache.
        #expect(try await store.insertVersion(first, created: Date()))
        #expect(try await store.version(name: "cached", version: Self.version) == first)
        await #expect(throws: (any Error).self) { try await store.execute("INSERT INTO nowhere VALUES (1)") }
        #expect(store.keyVersions.count == 0)
        try await store.close()
    }

    /// A read that overlaps a change answers what it read but keeps nothing: a record read before a change is
    /// never served after it.
    @Test func aReadOverlappingAChangeKeepsNothing() async throws {
        let cache = KeyVersionCache()
        let record = Self.stored()
        // The change begins and ends while the read is in flight.
        let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let read = Task {
            try await cache.record(name: "cached", version: nil) {
                enteredContinuation.yield()
                for await _ in release { break }
                return record
            }
        }
        for await _ in entered { break }
        try await cache.change {}
        releaseContinuation.yield()
        #expect(try await read.value == record)
        #expect(cache.count == 0)

        // A read that begins while a change is in flight keeps nothing either.
        let (changing, changingContinuation) = AsyncStream<Void>.makeStream()
        let (finish, finishContinuation) = AsyncStream<Void>.makeStream()
        let change = Task {
            try await cache.change {
                changingContinuation.yield()
                for await _ in finish { break }
            }
        }
        for await _ in changing { break }
        #expect(try await cache.record(name: "cached", version: nil) { record } == record)
        #expect(cache.count == 0)
        finishContinuation.yield()
        try await change.value
        // With no change around it, the read is kept and answered without reading again.
        #expect(try await cache.record(name: "cached", version: nil) { record } == record)
        #expect(cache.count == 1)
        let reads = Mutex(0)
        let held = try await cache.record(name: "cached", version: nil) {
            reads.withLock { $0 += 1 }
            return nil
        }
        #expect(held == record)
        #expect(reads.withLock { $0 } == 0)
        // Not-found is never kept.
        #expect(try await cache.record(name: "other", version: nil) { nil } == nil)
        #expect(cache.count == 1)
    }

    /// Concurrent reads beside a run of policy changes: once the last change returned, every read answers it.
    @Test func concurrentReadsAndChangesEndOnTheLastChange() async throws {
        let store = try await SQLiteKeyBrokerStore.open(directory: try Fixtures.temporaryDirectory() + "/data")
        #expect(try await store.insertVersion(Self.stored(), created: Date()))
        let last = Self.stored(policy: #"{"version":"1.0.0","n":40}"#)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<50 { _ = try await store.version(name: "cached", version: Self.version) }
                }
            }
            group.addTask {
                for index in 1...40 {
                    let changed = try await store.replaceVersion(
                        Self.stored(policy: #"{"version":"1.0.0","n":\#(index)}"#)
                    )
                    #expect(changed)
                }
            }
            try await group.waitForAll()
        }
        for _ in 0..<3 { #expect(try await store.version(name: "cached", version: Self.version) == last) }
        try await store.close()
    }

    /// Attack: a second broker (or the same process again) on one SQLite data directory would change records under
    /// the first one's cache. Refused by name while the first store is open (before this change, the second open
    /// succeeded); allowed again once it is closed.
    @Test func aSecondStoreOnTheDataDirectoryIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        let store = try await SQLiteKeyBrokerStore.open(directory: directory)
        await #expect {
            _ = try await SQLiteKeyBrokerStore.open(directory: directory)
        } throws: { error in
            (error as? ServiceError)?.code == "DataDirectoryInUse"
        }
        try await store.close()
        let reopened = try await SQLiteKeyBrokerStore.open(directory: directory)
        try await reopened.close()
        try await reopened.close()  // twice: releases nothing twice
        let third = try await SQLiteKeyBrokerStore.open(directory: directory)
        try await third.close()
    }

    /// Another process holding the lock (as a second `enclave serve keybroker` would) is refused the same way.
    @Test func aLockHeldByAnotherProcessIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory() + "/data"
        try await SQLiteKeyBrokerStore.open(directory: directory).close()
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-x", directory + "/keybroker.lock", "-c", "echo locked; sleep 30"]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        defer { holder.terminate() }
        // Wait until the other process holds the lock.
        let line = output.fileHandleForReading.availableData
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("locked"))
        await #expect {
            _ = try await SQLiteKeyBrokerStore.open(directory: directory)
        } throws: { error in
            (error as? ServiceError)?.code == "DataDirectoryInUse"
        }
    }
}
