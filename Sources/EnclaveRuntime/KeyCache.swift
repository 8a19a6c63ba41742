internal import Crypto
internal import EnclaveCore
internal import Synchronization

/// Sealing key roots the platform has handed this enclave, by policy and security version. Lives in enclave memory,
/// as `SymmetricKey`s (zeroed when released), never as copied byte arrays.
final class KeyCache: Sendable {
    struct Slot: Hashable {
        var policy: SealPolicy
        var securityVersion: UInt16
    }

    private let roots = Mutex<[Slot: SymmetricKey]>([:])

    func root(_ slot: Slot) -> SymmetricKey? { roots.withLock { $0[slot] } }
    func store(_ root: SymmetricKey, for slot: Slot) { roots.withLock { $0[slot] = root } }
}
