/// Requests an enclave makes to its platform (the simulated CPU) over the platform channel, fd 4 — never through
/// the host's call channel. The platform answers from the identity the loader measured, not from anything the
/// enclave claims. Not for application use: ``SealPolicy``, sealing and reports are the public surface.
package enum PlatformProtocol {
    /// The fd the loader hands the enclave its platform channel on.
    package static let channelFD: Int32 = 4

    /// Which key to derive.
    package enum KeyName: UInt8, Codable, Sendable {
        case seal = 1
        case report = 2
    }

    /// `EGETKEY`: a key bound to the caller's identity. For sealing, the platform returns the root of the
    /// (policy, security version) key tree; the enclave derives each blob's key from it and the blob's random key
    /// ID itself, so sealing costs one platform round trip per policy and version, not one per blob.
    package struct KeyRequest: Codable, Sendable {
        package var name: KeyName
        package var policy: SealPolicy
        /// May be lower than the caller's own security version (to read old data), never higher.
        package var securityVersion: UInt16

        package init(name: KeyName, policy: SealPolicy, securityVersion: UInt16) {
            self.name = name
            self.policy = policy
            self.securityVersion = securityVersion
        }
    }

    /// `EREPORT`: a report of the caller's identity and `reportData`, MACed for `target`.
    package struct ReportRequest: Codable, Sendable {
        package var target: TargetInfo
        package var reportData: [UInt8]

        package init(target: TargetInfo, reportData: [UInt8]) {
            self.target = target
            self.reportData = reportData
        }
    }

    package enum GetKey: EnclaveCall {
        package typealias Input = KeyRequest
        package typealias Output = [UInt8]
        package static var name: String { "platform.getKey" }
    }

    /// Remote evidence for the caller with 64 bytes of report data: a simulated SGX DCAP quote v3, or on a
    /// confidential VM the hardware's quote or report through configfs-tsm.
    package enum Quote: EnclaveCall {
        package typealias Input = [UInt8]
        package typealias Output = AttestationEvidence
        package static var name: String { "platform.quote" }
    }

    package enum Report: EnclaveCall {
        package typealias Input = ReportRequest
        package typealias Output = [UInt8]
        package static var name: String { "platform.report" }
    }
}
