public import EnclaveCore

/// What a careful client requires of the key broker's enclave before it hands it a key (``KeyBrokerClient``'s
/// `importKey(name:material:…)`): the signer, product and minimum security version its attestation token must state,
/// whether a debuggable enclave is acceptable, and the attestation authorities (with their signing certificates) the
/// broker enclave must have been opened trusting.
///
/// The product is required: one signer may sign other enclaves too (a sample that attests data its host chose, a
/// test build), and any of them would otherwise pass for the broker, bind the host's own import key and receive the
/// key. Signer and product together are the broker's identity.
public struct KeyBrokerExpectation: Hashable, Sendable {
    /// An attestation authority the broker must trust, with exactly these signing certificates.
    public struct Authority: Hashable, Sendable {
        /// The authority's URL (compared normalized: scheme and host in lower case, no default port, no trailing
        /// slash).
        public var url: String
        /// The SHA-256 thumbprints of its signing certificates (`kid`: base64url SHA-256 of the DER).
        public var thumbprints: Set<String>

        /// An authority by its URL and its certificates' thumbprints.
        public init(url: String, thumbprints: Set<String>) {
            self.url = url
            self.thumbprints = thumbprints
        }

        /// An authority by its URL and its certificates (DER).
        public init(url: String, certificates: [[UInt8]]) {
            self.init(url: url, thumbprints: Set(certificates.map(KeyBrokerClient.thumbprint)))
        }
    }

    /// The broker enclave's signer (`x-ms-sgx-mrsigner`).
    public var signerID: Digest32
    /// The broker enclave's product (`x-ms-sgx-product-id`), which the token must state exactly.
    public var productID: Int
    /// The lowest acceptable security version (`x-ms-sgx-svn`).
    public var minimumSecurityVersion: Int
    /// Whether a debuggable broker enclave is acceptable (`x-ms-sgx-is-debuggable`); never in production.
    public var allowDebug: Bool
    /// The authorities the broker enclave's evidence must name, exactly (no more, no fewer, the same certificates).
    /// `nil`: the attestation service that checks the broker's evidence (the issuer it names itself by), with the
    /// signing certificates it publishes at `/certs` (fetched over the client's own TLS trust of that service).
    public var authorities: [Authority]?

    /// An expectation with the members given.
    public init(
        signerID: Digest32,
        productID: Int,
        minimumSecurityVersion: Int = 0,
        allowDebug: Bool = false,
        authorities: [Authority]? = nil
    ) {
        self.signerID = signerID
        self.productID = productID
        self.minimumSecurityVersion = minimumSecurityVersion
        self.allowDebug = allowDebug
        self.authorities = authorities
    }
}
