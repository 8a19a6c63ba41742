import ArgumentParser
import Attestation
import AttestationService
import EnclaveCore
import Foundation
import Logging

/// `enclave serve attestation`'s options for who may change policies and what evidence the service accepts before
/// any policy is consulted.
struct ServeTrustOptions: ParsableArguments {
    @Option(
        help: """
            The administrator token file that policy changes must present (Authorization: Bearer …) when no \
            --policy-signer is given (default: DATA-DIR/admin-token, created 0600 on first start). Replicas \
            sharing --database share its digest in the database: give them the first instance's file.
            """
    )
    var adminTokenFile: String?

    @Flag(help: "Accept out-of-date TCB statuses (OutOfDate, OutOfDateConfigurationNeeded, TDRelaunchAdvised).")
    var acceptOutOfDate = false

    @Flag(help: "Accept debug SGX enclaves, debug TDs and SEV-SNP guests whose policy allows debugging.")
    var allowDebug = false

    @Option(help: "SEV-SNP: the highest VMPL a report may come from (default: 0).")
    var maxVmpl: UInt32?

    @Flag(help: "Write a new administrator token file and make it the one every instance sharing the store accepts.")
    var rotateAdminToken = false

    @Option(help: "Days audit records are kept.")
    var auditRetentionDays = 90

    @Option(help: "The most audit records kept (the newest).")
    var maxAuditRecords = 10_000_000

    func validate() throws {
        guard (1...36500).contains(auditRetentionDays) else {
            throw ValidationError("--audit-retention-days is 1 to 36500")
        }
        guard maxAuditRecords >= 1 else { throw ValidationError("--max-audit-records is at least 1") }
        if let maxVmpl, maxVmpl > 3 { throw ValidationError("--max-vmpl is 0 to 3") }
    }

    /// Put these options into `configuration`. Without policy signers: the administrator token file is loaded (or
    /// created, 0600), and its digest is the one the store shares between instances: a replica whose file holds
    /// another token than the one the shared database knows refuses to start rather than run with a second token.
    func apply(
        to configuration: inout AttestationServiceCore.Configuration,
        store: any ServiceStore,
        dataDirectory: String,
        logger: Logger
    ) async throws {
        var policy = configuration.evidencePolicy
        policy.allowDebug = allowDebug
        if let maxVmpl { policy.maximumVMPL = maxVmpl }
        if acceptOutOfDate { policy.allowOutOfDate = true }
        configuration.evidencePolicy = policy
        configuration.auditRetention = TimeInterval(auditRetentionDays) * 86400
        configuration.maxAuditRecords = maxAuditRecords
        guard configuration.policySigners.isEmpty else { return }
        let path = adminTokenFile ?? dataDirectory + "/admin-token"
        do {
            try SecretFile.createMissingDirectories(
                (path as NSString).deletingLastPathComponent,
                what: "administrator token directory"
            )
            let (token, created) =
                rotateAdminToken
                ? (try AdminCredential.rotate(path: path), true) : try AdminCredential.loadOrCreate(path: path)
            let local = AdminCredential(token: token)
            let shared = try await store.adminTokenDigest(orInsert: local.digest, replacing: rotateAdminToken)
            guard shared == local.digest else {
                if created { try? FileManager.default.removeItem(atPath: path) }
                throw ValidationError(
                    "the database already has another administrator token (another instance's): copy that instance's "
                        + "admin-token file to \(path), or start with --rotate-admin-token to replace it everywhere"
                )
            }
            configuration.adminCredential = local
            logger.notice(
                rotateAdminToken
                    ? "administrator token rotated"
                    : created ? "administrator token created" : "administrator token loaded",
                metadata: ["path": "\(path)"]
            )
        } catch let error as ServiceError {
            throw ValidationError(error.message)
        }
    }
}
