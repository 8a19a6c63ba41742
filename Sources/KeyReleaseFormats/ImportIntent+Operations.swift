extension ImportIntent {
    /// The operations that let the broker's administrator use a key inside the broker to recover data keys
    /// (`POST /keys/{name}/{version}/unwrapkey`): what an owner leaves out to keep the release policy the only way out.
    public static let unwrapOperations: Set<String> = ["decrypt", "unwrapKey"]

    /// The operations that let the broker's administrator wrap data keys with the key inside the broker
    /// (`POST /keys/{name}/{version}/wrapkey`).
    public static let wrapOperations: Set<String> = ["encrypt", "wrapKey"]

    /// The operations a key of `type` (a broker key type: `oct-256`, `RSA-2048`, `RSA-3072`, `EC-P-256`,
    /// `EC-P-384`) gets when its request names none.
    ///
    /// A key the operator creates, or one imported without a release policy, gets every operation of its type (for EC
    /// keys `unwrapKey` too: the broker unwraps ECDH-ES+A256KW JWEs to them, `enclave keys decrypt`). A key
    /// imported under a release policy (`releasable`) gets them without ``unwrapOperations``: the owner chose who may
    /// have the key, so the broker's administrator can't unwrap its data keys inside the broker unless the owner names
    /// those operations.
    ///
    /// - Returns: The operations, sorted; empty for an unknown type.
    public static func defaultOperations(type: String, releasable: Bool) -> [String] {
        let all: [String]
        switch type {
        case "oct-256": all = ["decrypt", "encrypt", "unwrapKey", "wrapKey"]
        case "RSA-2048", "RSA-3072": all = ["decrypt", "encrypt", "sign", "unwrapKey", "verify", "wrapKey"]
        case "EC-P-256", "EC-P-384": all = ["sign", "unwrapKey", "verify"]
        default: all = []
        }
        return releasable ? all.filter { !unwrapOperations.contains($0) } : all
    }
}
