public import EnclaveCore
internal import Foundation

/// Hardware evidence on a confidential VM through Linux configfs-tsm (`/sys/kernel/config/tsm/report`): an Intel
/// TDX quote or an AMD SEV-SNP report (with the host's certificate table) for 64 bytes of report data.
///
/// One report per fresh entry directory: write `inblob` (and `privlevel` when asked), read `outblob`, `auxblob` and
/// `provider`, and read `generation` before and after. The kernel bumps `generation` on every write to the entry,
/// so a value other than the number of writes made here means another writer changed the request in between:
/// the result is discarded and the request retried, and after ``maxAttempts`` it fails.
public struct ConfigFSTSM: Sendable {
    /// The file operations configfs-tsm needs; ``POSIX`` in production, a fixture in tests.
    public protocol FileSystem: Sendable {
        /// Create the directory at `path` (a new report entry); fails if it exists.
        func makeDirectory(_ path: String) throws
        /// Remove the (empty) directory at `path`; configfs deletes the entry with it.
        func removeDirectory(_ path: String) throws
        /// Write `bytes` to the attribute at `path` with a single `write`, as configfs requires.
        func write(_ bytes: [UInt8], to path: String) throws
        /// Read a whole attribute; `nil` if it does not exist.
        func read(_ path: String) throws -> [UInt8]?
        /// Whether `path` exists and is a directory.
        func directoryExists(_ path: String) -> Bool
    }

    /// What one report request returned.
    public struct Report: Hashable, Sendable {
        /// The kernel's name for the source: `tdx_guest` or `sev_guest`.
        public var provider: String
        /// The evidence: a TDX quote or an SEV-SNP attestation report. Not verified here; verify it with `Attestation`.
        public var outblob: [UInt8]
        /// Auxiliary data: for SEV-SNP the host's certificate table (VCEK or VLEK, ASK, ARK); usually empty for TDX.
        public var auxblob: [UInt8]
        /// The entry's `generation` after the read: how many writes the kernel counted (equal to the writes made here).
        public var generation: UInt64
    }

    /// Where the kernel mounts the report interface.
    public static let defaultRoot = "/sys/kernel/config/tsm/report"
    /// How many times a request disturbed by a concurrent writer is retried.
    public static let maxAttempts = 3
    /// The largest outblob or auxblob read.
    public static let maxBlobSize = 1 << 20

    /// The directory holding the report entries (``defaultRoot`` on a real confidential VM).
    public let root: String
    /// The file operations used on ``root``.
    public let fileSystem: any FileSystem

    /// Use the interface at `root` without checking that it exists (``detect(root:fileSystem:)`` checks).
    ///
    /// - Parameters:
    ///   - root: The configfs-tsm report directory.
    ///   - fileSystem: The file operations; tests pass a fixture.
    public init(root: String = Self.defaultRoot, fileSystem: any FileSystem = POSIX()) {
        self.root = root
        self.fileSystem = fileSystem
    }

    /// The interface at `root` (by default `$ENCLAVEKIT_TSM_ROOT`, else ``defaultRoot``), or `nil` when this is not
    /// a confidential VM with configfs-tsm.
    public static func detect(
        root: String? = nil,
        fileSystem: any FileSystem = POSIX()
    ) -> ConfigFSTSM? {
        let root = root ?? ProcessInfo.processInfo.environment["ENCLAVEKIT_TSM_ROOT"] ?? defaultRoot
        return fileSystem.directoryExists(root) ? ConfigFSTSM(root: root, fileSystem: fileSystem) : nil
    }

    /// A report binding `reportData` (exactly 64 bytes).
    /// - Parameters:
    ///   - reportData: The 64 bytes the evidence binds (`inblob`): a nonce, or the hash of what the guest claims.
    ///   - privilegeLevel: SEV-SNP only: the VMPL to report for (`privlevel`), if not the kernel's default.
    /// - Throws: `EnclaveError` — `malformedInput` when `reportData` is not 64 bytes, `unavailable` when the
    ///   interface refuses or another writer keeps changing the request, `limitExceeded` for an oversized blob.
    public func report(reportData: [UInt8], privilegeLevel: UInt32? = nil) throws(EnclaveError) -> Report {
        guard reportData.count == 64 else { throw .malformedInput("configfs-tsm report data is 64 bytes") }
        var lastGenerations = ""
        for _ in 0..<Self.maxAttempts {
            let entry = root + "/enclavekit-\(ProcessInfo.processInfo.processIdentifier)-" + UUID().uuidString
            do {
                try fileSystem.makeDirectory(entry)
            } catch {
                throw .unavailable("cannot create a configfs-tsm entry under \(root): \(error)")
            }
            defer { try? fileSystem.removeDirectory(entry) }
            var writes: UInt64 = 0
            do {
                try fileSystem.write(reportData, to: entry + "/inblob")
                writes += 1
                if let privilegeLevel {
                    try fileSystem.write(Array("\(privilegeLevel)\n".utf8), to: entry + "/privlevel")
                    writes += 1
                }
            } catch {
                throw .unavailable("cannot write the configfs-tsm request: \(error)")
            }
            let before = try generation(entry)
            let outblob = try blob(entry + "/outblob", required: true)
            let auxblob = try blob(entry + "/auxblob", required: false)
            let providerBytes = try blob(entry + "/provider", required: true)
            let after = try generation(entry)
            guard before == writes, after == writes else {
                lastGenerations = "generation \(before) then \(after), \(writes) written here"
                continue
            }
            guard !outblob.isEmpty else { throw .unavailable("configfs-tsm returned an empty report") }
            let provider = String(decoding: providerBytes, as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            return Report(provider: provider, outblob: outblob, auxblob: auxblob, generation: after)
        }
        throw .unavailable(
            "another writer changed the configfs-tsm request \(Self.maxAttempts) times (\(lastGenerations))"
        )
    }

    private func generation(_ entry: String) throws(EnclaveError) -> UInt64 {
        let text = String(decoding: try blob(entry + "/generation", required: true), as: UTF8.self)
        guard let value = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .malformedInput("configfs-tsm generation is not a number")
        }
        return value
    }

    private func blob(_ path: String, required: Bool) throws(EnclaveError) -> [UInt8] {
        let bytes: [UInt8]?
        do {
            bytes = try fileSystem.read(path)
        } catch {
            throw .unavailable("cannot read \(path): \(error)")
        }
        guard let bytes else {
            if required { throw .unavailable("configfs-tsm has no \((path as NSString).lastPathComponent)") }
            return []
        }
        guard bytes.count <= Self.maxBlobSize else { throw .limitExceeded("\(path) is over \(Self.maxBlobSize) bytes") }
        return bytes
    }
}

extension ConfigFSTSM {
    /// The real file system: each attribute written with one `write`, as configfs requires.
    public struct POSIX: FileSystem {
        /// The process's real file system.
        public init() {}

        public func makeDirectory(_ path: String) throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }

        public func removeDirectory(_ path: String) throws {
            guard rmdir(path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }

        public func write(_ bytes: [UInt8], to path: String) throws {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            defer { close(fd) }
            let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }

        public func read(_ path: String) throws -> [UInt8]? {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw POSIXError(.EIO)
            }
            return [UInt8](data)
        }

        public func directoryExists(_ path: String) -> Bool {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }
}
