public import Foundation

/// One attestation decision.
public struct AuditRecord: Hashable, Sendable {
    /// When the decision was made.
    public var time: Date
    /// The attestation type (`SgxEnclave`, …).
    public var type: String
    /// `permitted`, `refused` or `invalid`.
    public var result: String
    /// Key claims (measurement, signer, TCB status) or the reason for a refusal, as JSON.
    public var detail: String
    /// The `x-ms-policy-hash` of the policy that decided (empty when evidence was refused before any policy).
    public var policyHash: String

    /// A record.
    ///
    /// - Parameters:
    ///   - time: When.
    ///   - type: The attestation type.
    ///   - result: `permitted`, `refused`, `invalid` or `draft`.
    ///   - detail: Key claims or the refusal's reason, as JSON (no secrets: evidence fields only).
    ///   - policyHash: The policy's hash.
    public init(time: Date, type: String, result: String, detail: String, policyHash: String) {
        self.time = time
        self.type = type
        self.result = result
        self.detail = detail
        self.policyHash = policyHash
    }
}
