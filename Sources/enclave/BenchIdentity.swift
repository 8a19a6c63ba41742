import EnclaveCore

/// The identity the benchmarks' simulated quotes speak for: fixed, recognisable bytes (no enclave is loaded).
enum BenchIdentity {
    /// uniqueID 01…01, signerID 02…02, product 1, security version 1.
    static func standIn() throws -> EnclaveIdentity {
        EnclaveIdentity(
            uniqueID: try Digest32(bytes: [UInt8](repeating: 1, count: 32)),
            signerID: try Digest32(bytes: [UInt8](repeating: 2, count: 32)),
            productID: 1,
            securityVersion: 1,
            attributes: []
        )
    }
}
