internal import Crypto
public import EnclaveCore
internal import Foundation

/// An enclave executable read into memory and measured.
///
/// The bytes read here are the bytes that run: the loader executes this copy from a sealed memory file, never the
/// path again.
public struct EnclaveImage: Sendable {
    /// The largest image accepted.
    public static let maxImageSize = 2 << 30

    /// Where the image was read from.
    public let path: String
    /// The exact bytes that were measured.
    public let bytes: [UInt8]
    /// SHA-256 of ``bytes``.
    public let digest: Digest32
    /// The interpreter and shared libraries the image maps, with their current digests.
    public let trustedFiles: [EnclaveManifest.TrustedFile]
    /// Device and inode of each trusted file as it was read for its digest: the loader refuses an enclave that
    /// mapped another file at that path.
    package let trustedFileIdentities: [String: FileIdentity]

    /// Read and measure the image at `path` and every file the dynamic loader would map into it.
    /// - Throws: `EnclaveError` — `imageUnreadable` when the image or a library can't be read or parsed,
    ///   `limitExceeded` over ``maxImageSize``.
    public init(path: String) throws(EnclaveError) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = attributes?[.size] as? NSNumber else { throw .imageUnreadable("cannot read \(path)") }
        guard size.intValue <= Self.maxImageSize else {
            throw .limitExceeded("image \(path) is larger than \(Self.maxImageSize) bytes")
        }
        let bytes = try LibraryResolver.readFile(path)
        let elf = try ELFImage(bytes: bytes)
        var files: [EnclaveManifest.TrustedFile] = []
        var identities: [String: FileIdentity] = [:]
        for file in try LibraryResolver().trustedFiles(for: elf) {
            let (digest, identity) = try FileIdentity.digest(file)
            files.append(.init(path: file, digest: digest))
            identities[file] = identity
        }
        self.path = path
        self.bytes = bytes
        self.digest = Self.sha256(bytes)
        self.trustedFiles = files
        self.trustedFileIdentities = identities
    }

    /// The manifest this image yields under `config`'s layout.
    public func manifest(config: EnclaveConfig) -> EnclaveManifest {
        EnclaveManifest(
            imageDigest: digest,
            trustedFiles: trustedFiles,
            maxThreads: config.maxThreads,
            maxMemory: config.maxMemory
        )
    }

    /// Compare this measurement with a signed manifest; the error names the first difference.
    /// - Throws: `EnclaveError` `measurementMismatch` naming the image or library that differs.
    public func check(against signed: EnclaveManifest) throws(EnclaveError) {
        guard digest == signed.imageDigest else {
            throw .measurementMismatch("image \(path) does not match its signed measurement")
        }
        let current = Dictionary(uniqueKeysWithValues: trustedFiles.map { ($0.path, $0.digest) })
        let expected = Dictionary(uniqueKeysWithValues: signed.trustedFiles.map { ($0.path, $0.digest) })
        for (file, digest) in current.sorted(by: { $0.key < $1.key }) {
            guard let signedDigest = expected[file] else {
                throw .measurementMismatch("\(file) is loaded into the enclave but not in its signed manifest")
            }
            guard signedDigest == digest else {
                throw .measurementMismatch("\(file) changed since the enclave was signed")
            }
        }
        if let missing = expected.keys.sorted().first(where: { current[$0] == nil }) {
            throw .measurementMismatch("signed library \(missing) is no longer what the image loads")
        }
        guard manifest(config: signed.config).uniqueID == signed.uniqueID else {
            throw .measurementMismatch("recomputed uniqueID differs from the signed one")
        }
    }

    static func sha256(_ bytes: [UInt8]) -> Digest32 {
        try! Digest32(bytes: SHA256.hash(data: bytes))  // swift-format-ignore: NeverUseForceTry
    }
}

extension EnclaveManifest {
    /// The layout part of a manifest as a config (product values are not part of a manifest).
    var config: EnclaveConfig {
        EnclaveConfig(productID: 0, securityVersion: 0, maxThreads: maxThreads, maxMemory: maxMemory)
    }
}

extension EnclaveImage {
    /// Hexadecimal SHA-256 of `bytes` (for command-line output).
    public static func sha256Hex(_ bytes: [UInt8]) -> String { sha256(bytes).hex }
}
