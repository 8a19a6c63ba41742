internal import Synchronization

/// The key versions an instance's own SQLite store read, kept until the next change through that store: a release
/// reads its key's record without a database round trip (a query on SQLite's thread pool cost two thread hops and
/// two context switches per release).
///
/// Exact, not eventually consistent: the SQLite store is the only writer of its database (it holds the data
/// directory's lock, ``DataDirectoryLock``), and every change it makes goes through ``change(_:)``, which empties
/// the cache before the change starts and again once it has ended. A read that overlapped a change in any way (began
/// while one was in flight, or saw one begin or end before it finished) answers what it read but keeps nothing, so a
/// record read before a change is never served after it. Only found records are kept. Bounded: at ``capacity``
/// records it starts over.
final class KeyVersionCache: Sendable {
    /// The most records held.
    let capacity: Int

    private struct Key: Hashable, Sendable {
        var name: String
        /// Nil: the key's newest version.
        var version: String?
    }

    private struct State: Sendable {
        var generation: UInt64 = 0
        var changing = 0
        var records: [Key: StoredKeyVersion] = [:]
    }

    private let state = Mutex(State())

    /// A cache of at most `capacity` records.
    init(capacity: Int = 1024) {
        self.capacity = capacity
    }

    /// Version `version` of key `name` (nil: its newest version), from the cache or else from `read`.
    func record(
        name: String,
        version: String?,
        read: () async throws -> StoredKeyVersion?
    ) async throws -> StoredKeyVersion? {
        let key = Key(name: name, version: version)
        let (held, generation) = state.withLock { state -> (StoredKeyVersion?, UInt64?) in
            if let record = state.records[key] { return (record, nil) }
            return (nil, state.changing == 0 ? state.generation : nil)
        }
        if let held { return held }
        let record = try await read()
        if let record, let generation {
            state.withLock { state in
                guard state.generation == generation, state.changing == 0 else { return }
                if state.records.count >= capacity { state.records = [:] }
                state.records[key] = record
            }
        }
        return record
    }

    /// Runs `body`, a change to the store's keys, with the cache emptied before it starts and after it ends (whether
    /// it succeeds or throws).
    func change<T>(_ body: () async throws -> T) async throws -> T {
        state.withLock { state in
            state.changing += 1
            state.generation &+= 1
            state.records = [:]
        }
        defer {
            state.withLock { state in
                state.changing -= 1
                state.generation &+= 1
                state.records = [:]
            }
        }
        return try await body()
    }

    /// How many records are held (tests).
    var count: Int { state.withLock { $0.records.count } }
}
