/// Who an enclave is: what runs (``uniqueID``), who vouches for it (``signerID``) and what the signer declared.
public struct EnclaveIdentity: Hashable, Sendable, Codable {
    /// Enclave attributes fixed at signing time.
    public struct Attributes: OptionSet, Hashable, Sendable, Codable {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        /// The enclave may be debugged; its secrets are not protected. Never trust a debug enclave in production.
        public static let debug = Attributes(rawValue: 1 << 1)
        /// Attribute bits this version understands; any other bit makes a signature structure invalid.
        public static let known: Attributes = [.debug]
    }

    /// SHA-256 over everything that executes inside the enclave and its layout configuration.
    public var uniqueID: Digest32
    /// SHA-256 of the signer's public key (DER SubjectPublicKeyInfo).
    public var signerID: Digest32
    /// The product the signer assigns to this enclave.
    public var productID: UInt16
    /// The security version number; raise it with each security fix.
    public var securityVersion: UInt16
    /// Attributes such as ``Attributes/debug``.
    public var attributes: Attributes

    /// Create an identity.
    public init(
        uniqueID: Digest32,
        signerID: Digest32,
        productID: UInt16,
        securityVersion: UInt16,
        attributes: Attributes
    ) {
        self.uniqueID = uniqueID
        self.signerID = signerID
        self.productID = productID
        self.securityVersion = securityVersion
        self.attributes = attributes
    }

    /// Whether the enclave was signed as debuggable.
    public var isDebug: Bool { attributes.contains(.debug) }
}
