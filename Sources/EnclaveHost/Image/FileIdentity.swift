internal import CEnclaveSystem
internal import Crypto
internal import EnclaveCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Which file a path named when the loader read it: its device and inode, in the form `/proc/PID/maps` gives a
/// mapping's, so that the loader can tell whether the file the enclave mapped is the file it measured.
package struct FileIdentity: Hashable, Sendable {
    /// `major:minor` in hexadecimal, or `nil` on overlayfs, where a mapping shows the underlying layer's device
    /// rather than the overlay's (the inode is then compared alone).
    package var device: String?
    package var inode: UInt64
    /// `st_dev` as `fstat` gave it (the overlay's own on overlayfs, as `fstat` in the loader's child sees it again):
    /// with ``inode``, what the child compares before it lets the enclave's process open the file.
    package var statDevice: UInt64

    package init(device: String?, inode: UInt64, statDevice: UInt64) {
        self.device = device
        self.inode = inode
        self.statDevice = statDevice
    }

    /// The identity of the open file `fd`.
    package init(fd: Int32) throws(EnclaveError) {
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .imageUnreadable("fstat failed (errno \(errno))") }
        let overlay = ek_is_overlay(fd) != 0
        self.init(
            device: overlay ? nil : Self.format(device: UInt64(status.st_dev)),
            inode: UInt64(status.st_ino),
            statDevice: UInt64(status.st_dev)
        )
    }

    /// Whether a mapping the enclave reported is of this file.
    package func matches(_ mapping: LaunchProtocol.Mapping) -> Bool {
        inode == mapping.inode && (device == nil || device == mapping.device)
    }

    /// `dev` as `/proc/PID/maps` prints it: `%02x:%02x` of its major and minor numbers.
    static func format(device dev: UInt64) -> String {
        let major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
        let minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return digits.count < 2 ? "0" + digits : digits
        }
        return hex(major) + ":" + hex(minor)
    }

    /// SHA-256 of the whole file at `path`, read through one descriptor, and the identity of the file it came from.
    /// Streams: the file is never held in memory whole.
    package static func digest(
        _ path: String,
        limit: Int = EnclaveImage.maxImageSize
    ) throws(EnclaveError) -> (
        digest: Digest32, identity: FileIdentity
    ) {
        var hasher = SHA256()
        let identity = try readChunks(path, limit: limit) { hasher.update(bufferPointer: $0) }
        // swift-format-ignore: NeverUseForceTry
        return (try! Digest32(bytes: hasher.finalize()), identity)
    }

    /// Read the whole file at `path` through one descriptor: its bytes and the identity of the file they came from.
    package static func read(
        _ path: String,
        limit: Int = EnclaveImage.maxImageSize
    ) throws(EnclaveError) -> (
        bytes: [UInt8], identity: FileIdentity
    ) {
        var bytes: [UInt8] = []
        let identity = try readChunks(path, limit: limit) { bytes += $0 }
        return (bytes, identity)
    }

    /// Open `path` once, take the identity of what was opened, and hand its bytes to `body` in chunks of up to
    /// 1 MiB, refusing more than `limit` bytes in all.
    private static func readChunks(
        _ path: String,
        limit: Int,
        _ body: (UnsafeRawBufferPointer) -> Void
    ) throws(EnclaveError) -> FileIdentity {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .imageUnreadable("cannot read \(path) (errno \(errno))") }
        defer { close(fd) }
        let identity = try FileIdentity(fd: fd)
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw .imageUnreadable("cannot read \(path) (errno \(errno))") }
            if got == 0 { break }
            guard total <= limit - got else { throw .limitExceeded("\(path) is larger than \(limit) bytes") }
            total += got
            chunk.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
        }
        return identity
    }
}
