internal import EnclaveCore
internal import _EnclaveChannel

/// Serves one enclave's platform channel: key and report requests answered for the identity the loader measured;
/// remote evidence from the simulated platform, or from configfs-tsm on a confidential VM.
///
/// Nothing is handed out — no key, report or evidence — until `admitted()` says the loader has checked what the
/// enclave mapped against its signed manifest: an enclave running code that was not measured must not get the
/// measured identity's secrets.
enum PlatformService {
    /// What a request before the loader's check is refused with.
    static let notAdmitted = "the platform answers nothing before the loader has checked the enclave's mappings"

    static func start(
        platform: SimulatedPlatform,
        tsm: ConfigFSTSM?,
        identity: EnclaveIdentity,
        fd: Int32,
        admitted: @escaping @Sendable () -> Bool
    ) -> RPCPeer {
        let decoder = BinaryDecoder(maxMessageSize: 64 << 10)
        let encoder = BinaryEncoder()
        let peer = RPCPeer(
            channel: FrameChannel(fd: fd, maxFrameSize: 64 << 10),
            maxConcurrentRequests: 16,
            maxQueuedRequests: 64,
            maxQueuedBytes: 1 << 20,
            handler: { name, argument in
                guard admitted() else { throw EnclaveError.callFailed(notAdmitted) }
                switch name {
                case PlatformProtocol.GetKey.name:
                    let request = try decoder.decode(PlatformProtocol.KeyRequest.self, from: argument)
                    // The key leaves the platform only here, as the channel's bytes.
                    return try platform.key(request, for: identity).withUnsafeBytes { try encoder.encode(Array($0)) }
                case PlatformProtocol.Report.name:
                    let request = try decoder.decode(PlatformProtocol.ReportRequest.self, from: argument)
                    return try encoder.encode(try platform.report(request, from: identity))
                case PlatformProtocol.Quote.name:
                    let reportData = try decoder.decode([UInt8].self, from: argument)
                    guard let tsm else {
                        let quote = try platform.quote(for: identity, reportData: reportData)
                        return try encoder.encode(
                            AttestationEvidence(provider: AttestationEvidence.simulatedProvider, bytes: quote)
                        )
                    }
                    let report = try tsm.report(reportData: reportData)
                    return try encoder.encode(
                        AttestationEvidence(
                            provider: report.provider,
                            bytes: report.outblob,
                            auxiliaryData: report.auxblob
                        )
                    )
                default:
                    throw EnclaveError.unknownCall("the platform has no request named \"\(name)\"")
                }
            }
        )
        peer.start()
        return peer
    }
}
