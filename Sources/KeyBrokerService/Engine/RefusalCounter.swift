internal import AttestationAPI
internal import Foundation

/// Group commit for anonymous refusal counts (`KeyBrokerRefusalCount`): counts that arrive while a write is in
/// flight are added up and written together in the next one, and each caller returns once its count is stored (a
/// failed write fails every caller in it). After a write, at most once a minute, counts older than the retention
/// and beyond the most kept are deleted: the table stays bounded however many requests arrive.
actor RefusalCounter {
    let store: any KeyBrokerStore
    let retention: TimeInterval
    let maximum: Int
    private var pending: [(count: KeyBrokerRefusalCount, done: CheckedContinuation<Void, any Error>)] = []
    private var writing = false
    private var lastPrune: Int64?

    init(store: any KeyBrokerStore, retention: TimeInterval, maximum: Int) {
        self.store = store
        self.retention = retention
        self.maximum = maximum
    }

    /// Counts one refusal of `key` with `code` now; returns once stored.
    func count(key: String, code: String) async throws {
        let count = KeyBrokerRefusalCount(
            minute: KeyBrokerRefusalCount.minute(of: Date()),
            key: key,
            code: code,
            count: 1
        )
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((count, done))
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

    /// Writes batches until nothing is pending.
    private func drain() async {
        while !pending.isEmpty {
            let batch = pending
            pending.removeAll()
            do {
                try await store.countRefusals(KeyBrokerRefusalCount.aggregated(batch.map(\.count)))
                for item in batch { item.done.resume() }
            } catch {
                for item in batch { item.done.resume(throwing: error) }
            }
            await pruneIfDue()
        }
        writing = false
    }

    /// Deletes counts past the retention and beyond the most kept, at most once a minute (a failure is retried a
    /// minute later; the counts just written are stored either way).
    private func pruneIfDue() async {
        let now = KeyBrokerRefusalCount.minute(of: Date())
        guard lastPrune != now else { return }
        lastPrune = now
        let oldest = KeyBrokerRefusalCount.minute(of: Date().addingTimeInterval(-retention))
        try? await store.pruneRefusals(before: oldest, keepingAtMost: maximum)
    }
}
