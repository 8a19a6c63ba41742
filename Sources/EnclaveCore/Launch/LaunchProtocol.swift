/// Messages of the start-up handshake between the loader and the enclave runtime. Not for application use.
///
/// The enclave sends ``Hello`` (its pid and every file the dynamic loader mapped into it, read before the sandbox
/// closed file access); the loader checks those files against the signed manifest and answers with ``LaunchInfo``
/// (the identity it measured). The enclave does not take the host's word for that identity: it asks the platform for
/// a report of itself, checks its MAC with its own report key, and refuses to start when the two differ. When the
/// application is constructed the enclave sends ``Ready``.
package enum LaunchProtocol {
    package static let helloCall = "__enclavekit.hello"
    package static let readyCall = "__enclavekit.ready"
    /// Prefix reserved for runtime calls; applications may not register names with it.
    package static let reservedPrefix = "__enclavekit."

    package struct Hello: Codable, Sendable {
        package var pid: Int32
        package var mappedFiles: [String]
        package var sandboxed: Bool
        /// Each file mapping with the device and inode `/proc/self/maps` gives it, so that the loader can tell
        /// whether the file mapped is the file it measured.
        package var mappings: [Mapping]

        package init(pid: Int32, mappedFiles: [String], sandboxed: Bool, mappings: [Mapping] = []) {
            self.pid = pid
            self.mappedFiles = mappedFiles
            self.sandboxed = sandboxed
            self.mappings = mappings
        }
    }

    /// A file mapped into the enclave: its path, device (`major:minor` in hexadecimal, as `/proc/PID/maps` writes
    /// it) and inode.
    package struct Mapping: Codable, Sendable, Hashable {
        package var path: String
        package var device: String
        package var inode: UInt64

        package init(path: String, device: String, inode: UInt64) {
            self.path = path
            self.device = device
            self.inode = inode
        }
    }

    package struct LaunchInfo: Codable, Sendable {
        package var identity: EnclaveIdentity
        package var maxThreads: UInt32

        package init(identity: EnclaveIdentity, maxThreads: UInt32) {
            self.identity = identity
            self.maxThreads = maxThreads
        }
    }
}
