import ArgumentParser
import Attestation
import AttestationService
import Foundation
import Logging

/// `enclave serve attestation`'s options for who may change policies and what evidence the service accepts before
/// any policy is consulted.
struct ServeTrustOptions: ParsableArguments {
    @Option(
        help: """
            The administrator token file that policy changes must present (Authorization: Bearer …) when no \
            --policy-signer is given (default: DATA-DIR/admin-token, created 0600 on first start). Replicas \
            sharing --database must be given the same file.
            """
    )
    var adminTokenFile: String?

    @Flag(help: "Accept platforms whose TCB status is OutOfDate (or OutOfDateConfigurationNeeded).")
    var acceptOutOfDate = false

    @Flag(help: "Accept debug SGX enclaves, debug TDs and SEV-SNP guests whose policy allows debugging.")
    var allowDebug = false

    @Option(help: "SEV-SNP: the highest VMPL a report may come from (default: 0).")
    var maxVmpl: UInt32?

    @Option(help: "The most unexpired challenges outstanding at once.")
    var maxChallenges = 10_000

    @Option(help: "Days audit records are kept.")
    var auditRetentionDays = 90

    func validate() throws {
        guard (1...10_000_000).contains(maxChallenges) else {
            throw ValidationError("--max-challenges is 1 to 10000000")
        }
        guard (1...36500).contains(auditRetentionDays) else {
            throw ValidationError("--audit-retention-days is 1 to 36500")
        }
        if let maxVmpl, maxVmpl > 3 { throw ValidationError("--max-vmpl is 0 to 3") }
    }

    /// Put these options into `configuration`; creates the administrator token file when it is needed and missing.
    func apply(
        to configuration: inout AttestationServiceCore.Configuration,
        dataDirectory: String,
        logger: Logger
    ) throws {
        var policy = configuration.evidencePolicy
        policy.allowDebug = allowDebug
        if let maxVmpl { policy.maximumVMPL = maxVmpl }
        if acceptOutOfDate { policy.allowOutOfDate = true }
        configuration.evidencePolicy = policy
        configuration.maxChallenges = maxChallenges
        configuration.auditRetention = TimeInterval(auditRetentionDays) * 86400
        guard configuration.policySigners.isEmpty else { return }
        let path = adminTokenFile ?? dataDirectory + "/admin-token"
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
            let (token, created) = try AdminCredential.loadOrCreate(path: path)
            configuration.adminCredential = AdminCredential(token: token)
            logger.notice(
                created ? "administrator token created" : "administrator token loaded",
                metadata: ["path": "\(path)"]
            )
        } catch let error as ServiceError {
            throw ValidationError(error.message)
        }
    }
}
