package import Crypto
internal import EnclaveCore
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// The simulated CPU: it owns the platform root secret from which report keys and sealing keys are derived, and it
/// answers an enclave's key and report requests on the enclave's own platform channel, from the identity the loader
/// measured — never from what the enclave or the host claims.
///
/// State lives in ``directory`` (`$ENCLAVEKIT_PLATFORM_DIR`, else `$XDG_DATA_HOME/enclavekit/platform`, else
/// `~/.local/share/enclavekit/platform`), created on first use with mode 0700 and 0600 files. Two processes that
/// start at once agree on one secret: each writes a candidate and links it into place without replacing.
public final class SimulatedPlatform: Sendable {
    /// Where the platform keeps its state.
    public let directory: String
    private let rootSecret: SymmetricKey
    private let pkiState = Mutex<SimulatedPKI?>(nil)
    /// The QE report's signature by the PCK key, made once per QE report and PCK key as real quoting enclaves do
    /// when their attestation key is certified: every quote of the platform then carries the same one.
    let qeReportSignature = Mutex<(report: [UInt8], pckKey: [UInt8], signature: [UInt8])?>(nil)

    /// Drop the cached certificates and keys so that the next use reads the directory again.
    func reloadPKI() throws {
        let loaded = try SimulatedPKI.open(directory: directory)
        pkiState.withLock { $0 = loaded }
    }

    /// The platform's certificates and keys, created on first use.
    func pki() throws -> SimulatedPKI {
        if let loaded = pkiState.withLock({ $0 }) { return loaded }
        let loaded = try SimulatedPKI.open(directory: directory)
        pkiState.withLock { $0 = loaded }
        return loaded
    }

    private static let shared = Mutex<[String: SimulatedPlatform]>([:])

    /// The platform for `directory` (or the default one), created on first use.
    /// - Throws: `EnclaveError` `invalidConfiguration` when a platform file is corrupt or unreadable, or the file
    ///   system's error when the directory can't be created.
    public static func open(directory: String? = nil) throws -> SimulatedPlatform {
        let path = directory ?? defaultDirectory()
        if let existing = shared.withLock({ $0[path] }) { return existing }
        let platform = try SimulatedPlatform(directory: path)
        return shared.withLock { cache in
            if let existing = cache[path] { return existing }
            cache[path] = platform
            return platform
        }
    }

    /// The default platform directory for this user.
    public static func defaultDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["ENCLAVEKIT_PLATFORM_DIR"], !explicit.isEmpty { return explicit }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/enclavekit/platform" }
        return NSHomeDirectory() + "/.local/share/enclavekit/platform"
    }

    private init(directory: String) throws {
        self.directory = directory
        // Refuses a directory owned by another user or writable by others: whoever can write here can replace
        // the root secret or the attestation key.
        try SecretFile.prepareDirectory(directory, what: "platform directory ($ENCLAVEKIT_PLATFORM_DIR)")
        SecretFile.removeLeftovers(in: directory)
        if FileManager.default.fileExists(atPath: directory + "/pki") {
            try SecretFile.checkDirectory(directory + "/pki", what: "platform PKI directory")
            SecretFile.removeLeftovers(in: directory + "/pki")
        }
        var secret = try Self.loadOrCreate(directory + "/root-secret", size: 32)
        rootSecret = SymmetricKey(data: secret)
        _ = secret.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Read `path`, or create it with `size` random bytes (mode 0600) if it does not exist. Never replaces a file.
    package static func loadOrCreate(_ path: String, size: Int) throws -> [UInt8] {
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.count == size else {
                throw EnclaveError.invalidConfiguration("platform file \(path) is corrupt (\(existing.count) bytes)")
            }
            return [UInt8](existing)
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        if try SecretFile.write(bytes, to: path, replacing: false) { return bytes }
        // Another process created it first: use theirs.
        guard let winner = FileManager.default.contents(atPath: path), winner.count == size else {
            throw EnclaveError.invalidConfiguration("cannot read \(path), created by another process")
        }
        return [UInt8](winner)
    }

    // MARK: Keys

    /// Derive the key `request` names for an enclave whose measured identity is `identity` (`EGETKEY`).
    ///
    /// Sealing key roots bind the policy's identity (uniqueID, or signerID + product ID), the requested security
    /// version and the debug attribute; a request for a higher security version than the enclave's is refused.
    /// The enclave derives each blob's key from the root and the blob's random key ID.
    package func key(
        _ request: PlatformProtocol.KeyRequest,
        for identity: EnclaveIdentity
    ) throws(EnclaveError)
        -> SymmetricKey
    {
        switch request.name {
        case .report:
            return reportKey(for: TargetInfo(uniqueID: identity.uniqueID))
        case .seal:
            guard request.securityVersion <= identity.securityVersion else {
                throw .callFailed(
                    "sealing key for security version \(request.securityVersion) refused: the enclave is at "
                        + "\(identity.securityVersion)"
                )
            }
            var info = ByteWriter()
            info.append(Array("EnclaveKit.seal.v1".utf8))
            info.integer(request.policy.rawValue)
            switch request.policy {
            case .uniqueID:
                info.append(identity.uniqueID.bytes)
            case .signerID:
                info.append(identity.signerID.bytes)
                info.integer(identity.productID)
            }
            info.integer(request.securityVersion)
            info.integer(identity.attributes.rawValue)
            return derive(salt: [], info: info.bytes)
        }
    }

    /// Build a report of `identity` and `request.reportData`, MACed for the target (`EREPORT`).
    package func report(
        _ request: PlatformProtocol.ReportRequest,
        from identity: EnclaveIdentity
    ) throws(EnclaveError)
        -> [UInt8]
    {
        try LocalReport(
            identity: identity,
            target: request.target,
            reportData: request.reportData,
            key: reportKey(for: request.target)
        ).bytes
    }

    private func reportKey(for target: TargetInfo) -> SymmetricKey {
        derive(salt: [], info: Array("EnclaveKit.report.v1".utf8) + target.uniqueID.bytes)
    }

    private func derive(salt: [UInt8], info: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: rootSecret, salt: salt, info: info, outputByteCount: 32)
    }
}
