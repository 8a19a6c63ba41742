public import Foundation

/// One attestation decision.
public struct AuditRecord: Hashable, Sendable {
    public var time: Date
    public var type: String
    /// `permitted`, `refused` or `invalid`.
    public var result: String
    /// Key claims (measurement, signer, TCB status) or the reason for a refusal, as JSON.
    public var detail: String
    public var policyHash: String

    public init(time: Date, type: String, result: String, detail: String, policyHash: String) {
        self.time = time
        self.type = type
        self.result = result
        self.detail = detail
        self.policyHash = policyHash
    }
}
