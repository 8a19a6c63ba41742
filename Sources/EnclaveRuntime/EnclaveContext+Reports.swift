internal import Crypto
public import EnclaveCore

extension EnclaveContext {
    /// What a peer enclave needs to make a report for this one.
    public var targetInfo: TargetInfo { TargetInfo(uniqueID: identity.uniqueID) }

    /// A report of this enclave's identity and `reportData` (at most 64 bytes, zero-padded) that only `target` can
    /// verify (local attestation).
    /// - Throws: `EnclaveError` — `malformedInput` when `reportData` is over 64 bytes; the platform's error otherwise
    ///   (`channelClosed` when it is gone).
    public func report(for target: TargetInfo, reportData: [UInt8]) async throws -> [UInt8] {
        guard reportData.count <= 64 else { throw EnclaveError.malformedInput("report data is at most 64 bytes") }
        let padded = reportData + [UInt8](repeating: 0, count: 64 - reportData.count)
        return try await platformCall(
            PlatformProtocol.Report.self,
            PlatformProtocol.ReportRequest(target: target, reportData: padded)
        )
    }

    /// Verify a report made for this enclave by another enclave on the same platform; returns it.
    /// - Throws: `malformedInput` if it does not parse, `invalidSignature` if it was made for another enclave or
    ///   its MAC does not verify.
    public func verifyReport(_ bytes: [UInt8]) async throws -> LocalReport {
        let report = try LocalReport(bytes: bytes)
        guard report.target == targetInfo else {
            throw EnclaveError.invalidSignature("the report was made for another enclave")
        }
        let key = try await platformKey(
            PlatformProtocol.KeyRequest(name: .report, policy: .uniqueID, securityVersion: 0)
        )
        guard report.verify(key: key) else { throw EnclaveError.invalidSignature("the report's MAC does not verify") }
        return report
    }
}

extension EnclaveContext {
    /// Remote evidence binding `reportData` (at most 64 bytes, zero-padded). On the simulated platform: an SGX DCAP
    /// ECDSA quote v3 of this enclave. On a confidential VM (Intel TDX, AMD SEV-SNP) where the host found Linux
    /// configfs-tsm: the hardware's quote or report of the whole VM, with `reportData` as its report data — the VM
    /// is then the TEE, and the enclave's identity is whatever the VM's measurements say. The provider tells which.
    /// By convention `reportData` is SHA-256 of the claims the enclave makes (a nonce, a public key): see
    /// ``reportData(claims:)``.
    /// - Throws: `EnclaveError` — `malformedInput` when `reportData` is over 64 bytes, `callFailed` with the platform's
    ///   reason when it can't produce evidence (configfs-tsm refused, the simulated platform's state unreadable),
    ///   `channelClosed` when the platform is gone.
    public func evidence(reportData: [UInt8]) async throws -> AttestationEvidence {
        guard reportData.count <= 64 else { throw EnclaveError.malformedInput("report data is at most 64 bytes") }
        let padded = reportData + [UInt8](repeating: 0, count: 64 - reportData.count)
        return try await platformCall(PlatformProtocol.Quote.self, padded)
    }

    /// Report data for custom claims, as Open Enclave does: SHA-256 of their serialisation (name, value pairs in
    /// name order, each length-prefixed), zero-padded to 64 bytes.
    public static func reportData(claims: [String: [UInt8]]) -> [UInt8] {
        var writer = ByteWriter()
        for (name, value) in claims.sorted(by: { $0.key < $1.key }) {
            writer.integer(UInt32(name.utf8.count))
            writer.append(name.utf8)
            writer.integer(UInt32(value.count))
            writer.append(value)
        }
        return Array(SHA256.hash(data: writer.bytes)) + [UInt8](repeating: 0, count: 32)
    }

    /// Report data that binds `bytes` (a nonce, a public key): their SHA-256, zero-padded to 64 bytes.
    public static func reportData(hashing bytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: bytes)) + [UInt8](repeating: 0, count: 32)
    }
}
