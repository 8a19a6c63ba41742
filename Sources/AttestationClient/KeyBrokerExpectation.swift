public import EnclaveCore

/// What a careful client requires of the key broker's enclave before it hands it a key (``KeyBrokerClient``'s
/// `importKey(name:material:…)`): the signer, product and minimum security version its attestation token must state,
/// and whether a debuggable enclave is acceptable.
public struct KeyBrokerExpectation: Hashable, Sendable {
    /// The broker enclave's signer (`x-ms-sgx-mrsigner`).
    public var signerID: Digest32
    /// The broker enclave's product (`x-ms-sgx-product-id`); `nil` accepts any.
    public var productID: Int?
    /// The lowest acceptable security version (`x-ms-sgx-svn`).
    public var minimumSecurityVersion: Int
    /// Whether a debuggable broker enclave is acceptable (`x-ms-sgx-is-debuggable`); never in production.
    public var allowDebug: Bool

    /// An expectation with the members given.
    public init(signerID: Digest32, productID: Int? = nil, minimumSecurityVersion: Int = 0, allowDebug: Bool = false) {
        self.signerID = signerID
        self.productID = productID
        self.minimumSecurityVersion = minimumSecurityVersion
        self.allowDebug = allowDebug
    }
}
