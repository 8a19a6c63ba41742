internal import AttestationService
internal import Foundation
internal import Synchronization

/// The exclusive lock a SQLite store holds on its data directory (`flock` on `keybroker.lock`, 0600) while it is
/// open: one SQLite database serves one broker instance (replicas share a PostgreSQL `--database`), so the store's
/// reads can trust that every change goes through it (``KeyVersionCache``). A second instance on the same directory
/// — another process, or the same process opening it again — is refused `DataDirectoryInUse` instead of serving
/// records that may change under it. Released by ``release()``, when the lock is deallocated, or by the operating
/// system when the process ends.
final class DataDirectoryLock: Sendable {
    private let descriptor: Mutex<Int32?>

    /// Takes the lock of `directory` (which exists), or throws `DataDirectoryInUse` when another store holds it.
    init(directory: String) throws {
        let path = directory + "/keybroker.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw KeyBrokerCore.failure("cannot open the data directory's lock \(path) (errno \(errno))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            close(descriptor)
            guard error == EWOULDBLOCK else {
                throw KeyBrokerCore.failure("cannot lock the data directory's lock \(path) (errno \(error))")
            }
            throw ServiceError(
                status: .internalServerError,
                code: "DataDirectoryInUse",
                message: "\(directory) is in use by another key broker (it holds \(path)): one SQLite data "
                    + "directory serves one instance; replicas share a PostgreSQL --database"
            )
        }
        self.descriptor = Mutex(descriptor)
    }

    deinit { release() }

    /// Releases the lock (once; later calls do nothing).
    func release() {
        guard
            let descriptor = descriptor.withLock({ held in
                defer { held = nil }
                return held
            })
        else { return }
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
