internal import Crypto

/// What was measured: the image's digest, the digest of every file the dynamic loader maps into the enclave, and
/// the layout configuration. ``uniqueID`` is derived from exactly these.
public struct EnclaveManifest: Hashable, Sendable {
    /// A file that executes inside the enclave besides the image itself (the ELF interpreter, shared libraries).
    public struct TrustedFile: Hashable, Sendable {
        /// Absolute path the loader maps it from.
        public var path: String
        /// SHA-256 of its contents.
        public var digest: Digest32

        /// Create an entry for a trusted file.
        ///
        /// - Parameters:
        ///   - path: The absolute path the loader maps the file from; at most ``EnclaveManifest/maxPathLength`` bytes.
        ///   - digest: The SHA-256 of the file's contents.
        public init(path: String, digest: Digest32) {
            self.path = path
            self.digest = digest
        }
    }

    /// The largest number of trusted files and the longest path a manifest may hold.
    public static let maxTrustedFiles = 512
    /// The longest trusted-file path, in UTF-8 bytes, a manifest or a signature may hold.
    public static let maxPathLength = 4096

    /// SHA-256 of the executable image.
    public var imageDigest: Digest32
    /// The trusted files, sorted by path.
    public var trustedFiles: [TrustedFile]
    /// ECALLs served at once (part of the measured layout).
    public var maxThreads: UInt32
    /// Address-space limit (part of the measured layout).
    public var maxMemory: UInt64

    /// Create a manifest; trusted files are sorted by path.
    public init(imageDigest: Digest32, trustedFiles: [TrustedFile], maxThreads: UInt32, maxMemory: UInt64) {
        self.imageDigest = imageDigest
        self.trustedFiles = trustedFiles.sorted { $0.path < $1.path }
        self.maxThreads = maxThreads
        self.maxMemory = maxMemory
    }

    /// SHA-256 over a domain tag, the image digest, every trusted file (path and digest) and the layout.
    public var uniqueID: Digest32 {
        var writer = ByteWriter()
        writer.append(Array("EnclaveKit.uniqueID.v1\u{0}".utf8))
        writer.append(imageDigest.bytes)
        writer.integer(UInt16(trustedFiles.count))
        for file in trustedFiles {
            writer.integer(UInt16(file.path.utf8.count))
            writer.append(file.path.utf8)
            writer.append(file.digest.bytes)
        }
        writer.integer(maxThreads)
        writer.integer(maxMemory)
        // SHA-256 always yields 32 bytes.
        return try! Digest32(bytes: SHA256.hash(data: writer.bytes))  // swift-format-ignore: NeverUseForceTry
    }
}
