import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Every temporary directory a test process makes lives under one root of its own, removed when the process exits.
///
/// Before this, each test left its directory (signed enclave copies of 54 MB among them) in the system's temporary
/// folder: a few hundred runs filled a 250 GB disk and a CI build then failed to link. A root left by a process that
/// died without exiting (a crash, a kill) is removed by the next test process, once its owner is gone and it has not
/// changed for an hour (another machine's run sharing the folder keeps its root).
public enum TestDirectories {
    /// The prefix of every root; the owner's process ID follows it.
    public static let prefix = "enclavekit-tests-run-"

    /// This process's root, made (and the stale roots of dead processes reaped) on first use.
    public static let root: String = {
        let base = NSTemporaryDirectory()
        reapStaleRoots(in: base)
        let path = base + prefix + "\(getpid())-" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // World-readable: the unprivileged-user test reads below it.
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        rootPath = strdup(path)
        atexit { TestDirectories.removeRoot() }
        return path
    }()

    /// The root as a C string, for the exit handler (which must not start Swift runtime work it can avoid).
    nonisolated(unsafe) private static var rootPath: UnsafeMutablePointer<CChar>?

    /// A new directory under this process's root.
    static func make(_ label: String) throws -> String {
        let path = root + "/" + label + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    private static func removeRoot() {
        guard let rootPath else { return }
        try? FileManager.default.removeItem(atPath: String(cString: rootPath))
    }

    /// Remove the roots in `base` (a path ending in `/`) whose process is gone and which have not changed for an
    /// hour.
    public static func reapStaleRoots(in base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        let cutoff = Date().addingTimeInterval(-3600)
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let owner = rest.split(separator: "-").first.flatMap({ pid_t($0) }), owner > 0 else { continue }
            if kill(owner, 0) == 0 || errno != ESRCH { continue }
            let path = base + name
            let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            guard let modified, modified < cutoff else { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
