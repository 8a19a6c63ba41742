/// Which identity a sealing key is bound to.
public enum SealPolicy: UInt8, Codable, Sendable, CaseIterable {
    /// Only this exact enclave (same uniqueID) can unseal.
    case uniqueID = 1
    /// Any enclave of the same signer and product ID, at the same or a higher security version, can unseal.
    case signerID = 2
}
