/// ``BrokerRelease``'s input: the stored key, the requester's attestation token and Key Vault's optional members.
public struct BrokerReleaseRequest: Codable, Hashable, Sendable {
    /// The key as stored.
    public var key: StoredKey
    /// The attestation token (JWS compact) of the enclave asking for the key.
    public var target: String
    /// When given, the token's `nonce` (or `x-ms-runtime.nonce`) must equal it.
    public var nonce: String?
    /// The wrap the caller asks for: `RSA_AES_KEY_WRAP_256` / `CKM_RSA_AES_KEY_WRAP` (RSA target keys) or
    /// `ECDH-ES+A256KW` (EC target keys); `nil` picks by the first suitable key in `x-ms-runtime.keys`.
    public var enc: String?

    /// A release request.
    public init(key: StoredKey, target: String, nonce: String? = nil, enc: String? = nil) {
        self.key = key
        self.target = target
        self.nonce = nonce
        self.enc = enc
    }
}

/// ``BrokerRelease``'s answer: the release JWS, or a refusal; with what the audit log records either way.
public struct BrokerReleaseResponse: Codable, Hashable, Sendable {
    /// The release answer (JWS compact, signed by the broker, `x5c` = its signing certificate), Key Vault's
    /// `{"value": …}`; `nil` when refused.
    public var value: String?
    /// Why the key was not released; `nil` when released.
    public var refusal: BrokerRefusal?
    /// What the audit log records about the token.
    public var audit: BrokerReleaseAudit

    /// A release answer.
    public init(value: String?, refusal: BrokerRefusal?, audit: BrokerReleaseAudit) {
        self.value = value
        self.refusal = refusal
        self.audit = audit
    }
}

/// A refused release: a stable ``code`` (one of the ``Code`` constants) and a message naming the failed check or
/// policy condition (names only, never claim values or key bytes).
public struct BrokerRefusal: Codable, Hashable, Sendable, CustomStringConvertible {
    /// The reason code, stable across versions (one of the ``Code`` constants).
    public var code: String
    /// What failed, for people.
    public var message: String

    /// A refusal.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }

    /// The refusal codes.
    public enum Code {
        /// The target is not a JWS compact token with a JSON header and payload.
        public static let malformedToken = "MalformedToken"
        /// The header's `alg` is not allowed (`none`, HMAC, or anything but RS256/RS384/RS512/PS256/PS384/PS512/
        /// ES256/ES384).
        public static let algorithmNotAllowed = "AlgorithmNotAllowed"
        /// The token's issuer is not one of the broker's trusted authorities.
        public static let untrustedIssuer = "UntrustedIssuer"
        /// The token verifies but is not an attestation token: its header's `typ` is neither absent nor `JWT` (the
        /// attestation service gives its policy tokens `policy+jwt`), it names no `x-ms-attestation-type`, or it
        /// carries a policy token's claims (`x-enclavekit-token-kind`, `x-ms-policy`, `x-ms-policy-result`).
        public static let notAttestationToken = "NotAnAttestationToken"
        /// The token's `kid` names no pinned certificate of its authority.
        public static let unknownKeyID = "UnknownKeyID"
        /// The signature does not verify with the authority's pinned key.
        public static let invalidSignature = "InvalidSignature"
        /// The token's `exp` is past (beyond the allowed clock skew), or missing.
        public static let tokenExpired = "TokenExpired"
        /// The token's `nbf` (or `iat`) is in the future (beyond the allowed clock skew).
        public static let tokenNotYetValid = "TokenNotYetValid"
        /// The request's nonce is not the token's.
        public static let nonceMismatch = "NonceMismatch"
        /// The token has no `x-ms-runtime.keys`, or none of its keys is usable for the wrap asked for.
        public static let noRuntimeKey = "NoRuntimeKey"
        /// The token's RSA key is shorter than 2048 bits.
        public static let targetKeyTooWeak = "TargetKeyTooWeak"
        /// The token's EC key is on a curve other than P-256 and P-384.
        public static let unsupportedCurve = "UnsupportedCurve"
        /// The requested `enc` is not supported.
        public static let unsupportedWrap = "UnsupportedWrap"
        /// The key's release policy is not satisfied (the message names the failed condition's JSON path).
        public static let policyNotSatisfied = "PolicyNotSatisfied"
        /// The key is not exportable (or has no release policy).
        public static let keyNotExportable = "KeyNotExportable"
        /// The stored key's blob does not open under the master key with its attributes (tampered or swapped).
        public static let keyBlobInvalid = "KeyBlobInvalid"
        /// The token verified with a certificate the broker pins now, but not with one of the certificates pinned in
        /// the key's envelope for its issuer when the key (or its policy) was made: a certificate the host added
        /// later for the same authority URL releases nothing.
        public static let authorityCertificateNotPinned = "AuthorityCertificateNotPinned"
        /// The stored key's blob is in an older at-rest format (before authority pins): re-create or re-import it.
        public static let keyBlobOutdated = "KeyBlobOutdated"
        /// The token is not an acceptable join token (another signer or product, a lower security version, a
        /// debug enclave, or evidence not binding the offered key).
        public static let joinRefused = "JoinRefused"
    }
}

/// What the audit log records about a release's token (from the verified token when it verified, else from its
/// unverified payload, marked so by ``verified``).
public struct BrokerReleaseAudit: Codable, Hashable, Sendable {
    /// The token's `iss`, when readable.
    public var issuer: String?
    /// The token's `jti`, when readable.
    public var tokenID: String?
    /// Measurement claims (`x-ms-sgx-mrenclave`, `x-ms-sgx-mrsigner`, `x-ms-sgx-svn`, `x-ms-sgx-product-id`,
    /// `tdx_mrtd`, `x-ms-sevsnpvm-launchmeasurement`, `x-ms-attestation-type`) as text, when readable.
    public var claims: [String: String]
    /// Whether the token's signature, issuer and freshness verified.
    public var verified: Bool

    /// An audit record.
    public init(issuer: String?, tokenID: String?, claims: [String: String], verified: Bool) {
        self.issuer = issuer
        self.tokenID = tokenID
        self.claims = claims
        self.verified = verified
    }
}
