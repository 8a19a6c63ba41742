internal import AttestationAPI
internal import Foundation

/// Group commit for the audit log: records that arrive while a write is in flight are written together in the
/// next one (``KeyBrokerStore/appendAudit(batch:)``, one statement and one sync for the SQLite store), and each
/// caller returns only once its own record is stored — as durable as one write per record, without one sync per
/// release (a sync took 2 to 4 ms on the bench machine, which capped releases near 300/s whatever the enclave did).
///
/// A batch that fails fails every caller in it (each request answers that the audit log could not be written).
/// Records keep their arrival order.
actor AuditBatcher {
    /// The most records in one write.
    static let maximumBatch = 256

    let store: any KeyBrokerStore
    private var pending: [(entry: KeyBrokerAuditEntry, done: CheckedContinuation<Void, any Error>)] = []
    private var writing = false

    init(store: any KeyBrokerStore) {
        self.store = store
    }

    /// Appends `entry`; returns once it is stored, throws when its batch could not be written.
    func append(_ entry: KeyBrokerAuditEntry) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((entry, done))
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

    /// Writes batches until nothing is pending.
    private func drain() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(Self.maximumBatch))
            pending.removeFirst(batch.count)
            do {
                try await store.appendAudit(batch: batch.map(\.entry))
                for item in batch { item.done.resume() }
            } catch {
                for item in batch { item.done.resume(throwing: error) }
            }
        }
        writing = false
    }
}
