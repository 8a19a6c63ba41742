internal import Crypto
internal import EnclaveCore
internal import _EnclaveChannel

extension EnclaveRuntime {
    /// The enclave's identity as the platform measured it, checked against what the host's start-up answer claims.
    ///
    /// The host is untrusted: its answer only names the uniqueID to target. The enclave asks the platform for a
    /// report of itself for that target, binding a fresh nonce, and checks the report's MAC with its own report key
    /// (derived by the platform from the measured uniqueID, as `EGETKEY` does). A report that verifies was made by
    /// the platform for this very enclave, so its identity is the measured one — the one sealing keys, joins and
    /// contract checks must use. Any difference from the host's answer (signer, product, security version,
    /// attributes, or a uniqueID that makes the MAC fail) means the host lied: the enclave refuses to start.
    /// - Throws: `EnclaveError` `measurementMismatch` when the host's answer is not the measured identity,
    ///   `protocolViolation` when the platform's report is malformed or binds another nonce, the platform's error
    ///   otherwise.
    static func measuredIdentity(
        claimed: EnclaveIdentity,
        platform: RPCPeer,
        encoder: BinaryEncoder,
        decoder: BinaryDecoder
    ) async throws -> EnclaveIdentity {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<64).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let target = TargetInfo(uniqueID: claimed.uniqueID)
        let reportBytes = try CallCodec.decodeResult(
            PlatformProtocol.Report.self,
            try await platform.call(
                name: PlatformProtocol.Report.name,
                argument: encoder.encode(PlatformProtocol.ReportRequest(target: target, reportData: nonce))
            ),
            decoder: decoder
        )
        let report: LocalReport
        do {
            report = try LocalReport(bytes: reportBytes)
        } catch {
            throw EnclaveError.protocolViolation("the platform's report of this enclave is malformed: \(error.reason)")
        }
        guard report.target == target, report.reportData == nonce else {
            throw EnclaveError.protocolViolation("the platform's report of this enclave answers another request")
        }
        var keyBytes = try CallCodec.decodeResult(
            PlatformProtocol.GetKey.self,
            try await platform.call(
                name: PlatformProtocol.GetKey.name,
                argument: encoder.encode(
                    PlatformProtocol.KeyRequest(name: .report, policy: .uniqueID, securityVersion: 0)
                )
            ),
            decoder: decoder
        )
        defer { _ = keyBytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        guard keyBytes.count == 32 else {
            throw EnclaveError.protocolViolation("the platform returned a malformed key")
        }
        guard report.verify(key: SymmetricKey(data: keyBytes)) else {
            throw EnclaveError.measurementMismatch(
                "the host's start-up answer names uniqueID \(claimed.uniqueID.hex), which is not this enclave's "
                    + "measurement (the platform's report for it does not verify with this enclave's report key)"
            )
        }
        let measured = report.identity
        guard measured == claimed else {
            throw EnclaveError.measurementMismatch(
                "the host's start-up answer (\(describe(claimed))) is not the identity the platform measured "
                    + "(\(describe(measured)))"
            )
        }
        return measured
    }

    private static func describe(_ identity: EnclaveIdentity) -> String {
        "signer \(identity.signerID.hex.prefix(16))…, product \(identity.productID), security version "
            + "\(identity.securityVersion), debug \(identity.isDebug ? "on" : "off")"
    }
}
