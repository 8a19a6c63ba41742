internal import AttestationAPI
internal import Crypto
internal import EnclaveCore
internal import Foundation
public import KeyBrokerInterface
public import KeyReleaseFormats
internal import _CryptoExtras

/// The broker's key operations, as the broker enclave runs them: create and import keys into the at-rest envelope,
/// change their policies, and the release decision (token, policy, wrap to the token's key, signed answer).
///
/// A pure value: the keyring, the trusted authorities and the broker's name; time is a parameter.
public struct KeyBroker: Sendable {
    /// The broker's keys.
    public let keyring: BrokerKeyring
    /// The token verifier over the trusted authorities.
    public let verifier: ReleaseTokenVerifier
    /// The broker's name (its base URL), the prefix of every key's `kid`.
    public let name: String

    /// The longest key name or version.
    public static let maximumNameLength = 127

    /// A broker with its keyring, trusting `authorities`.
    ///
    /// - Throws: ``KeyBrokerError`` `InvalidRequest` for an unusable authority, or more than
    ///   `AuthorityPins.maximumAuthorities`; `KeyringAuthorityNotTrusted` when the keyring was joined under a
    ///   certificate (``BrokerKeyring/joinedUnder``) that `authorities` do not pin.
    public init(keyring: BrokerKeyring, authorities: [BrokerAuthority], name: String) throws(KeyBrokerError) {
        guard authorities.count <= AuthorityPins.maximumAuthorities else {
            throw KeyBrokerError(
                KeyBrokerError.invalidRequest,
                "more than \(AuthorityPins.maximumAuthorities) authorities"
            )
        }
        self.keyring = keyring
        var trusted: [TrustedAuthority] = []
        for authority in authorities { trusted.append(try TrustedAuthority(authority)) }
        verifier = ReleaseTokenVerifier(authorities: trusted)
        self.name = name
        // A joined keyring was accepted on a granter token checked with the list the newcomer's host chose: it opens
        // only while that certificate is trusted, so that a forged one can't be dropped from the evidence afterwards.
        let trustedNow = verifier.pins
        for authority in keyring.joinedUnder.authorities {
            for thumbprint in authority.thumbprints where !trustedNow.covers(url: authority.url, thumbprint: thumbprint)
            {
                throw KeyBrokerError(
                    KeyBrokerError.keyringAuthorityNotTrusted,
                    "the keyring was joined under a granter token of \(authority.url) signed with the certificate "
                        + "\(thumbprint), which the broker is not opened trusting: trust it (clients see it in the "
                        + "evidence) or join again"
                )
            }
        }
    }

    /// The authorities the broker trusts now, with the thumbprints of their pinned signing certificates: bound into
    /// its evidence, and recorded (those a key's policy names) in each key's envelope when it is made.
    public var pinnedAuthorities: AuthorityPins { verifier.pins }

    /// The pins of `authorities` (every one, with all its certificates), as a new keyring records them.
    ///
    /// - Throws: ``KeyBrokerError`` `InvalidRequest` for an unusable authority.
    public static func pins(of authorities: [BrokerAuthority]) throws(KeyBrokerError) -> AuthorityPins {
        var trusted: [TrustedAuthority] = []
        for authority in authorities { trusted.append(try TrustedAuthority(authority)) }
        return ReleaseTokenVerifier(authorities: trusted).pins
    }

    /// The import key's public JWK (JSON text).
    public var importKeyJWK: String {
        guard let jwk = try? WrapJWK(rsa: keyring.importKey.publicKey, kid: "import") else { return "{}" }
        return Self.json(jwk)
    }

    /// The signing key's public JWK (JSON text, with `x5c`).
    public var signingKeyJWK: String {
        let raw = Array(keyring.signingKey.publicKey.rawRepresentation)
        let members: [String: TokenValue] = [
            "kty": .string("EC"), "crv": .string("P-256"), "use": .string("sig"), "alg": .string("ES256"),
            "kid": .string(keyring.signingKeyID), "x": .string(Base64URL.encode(raw.prefix(32))),
            "y": .string(Base64URL.encode(raw.suffix(32))),
            "x5c": .array([.string(Data(keyring.signingCertificate).base64EncodedString())]),
        ]
        return TokenValue.object(members).jsonText
    }

    // MARK: Keys

    /// Creates a key inside the broker.
    public func createKey(_ request: BrokerCreateKeyRequest) throws(KeyBrokerError) -> StoredKey {
        try Self.check(name: request.name, version: request.version, attributes: request.attributes)
        return try store(
            KeyMaterial.generate(request.type),
            name: request.name,
            version: request.version,
            operations: request.keyOperations,
            attributes: request.attributes
        )
    }

    /// Imports a key wrapped to the import key (`RSA_AES_KEY_WRAP_256`).
    ///
    /// A key imported under a release policy (its owner's key: the wrapped payload carries the owner's import intent)
    /// is stored immutable whatever `request.attributes.immutable` says, and the envelope binds it: no
    /// ``updatePolicy(_:)`` replaces its policy, not even one the broker's host asks the enclave for directly. An owner
    /// who needs another policy imports the key again under a new name.
    public func importKey(_ request: BrokerImportKeyRequest) throws(KeyBrokerError) -> StoredKey {
        try Self.check(name: request.name, version: request.version, attributes: request.attributes)
        let bytes: [UInt8]
        do { bytes = try RSAAESKeyWrap.unwrap(request.wrappedKey, with: keyring.importKey) } catch {
            throw KeyBrokerError(KeyBrokerError.importRefused, "the key does not unwrap with the import key: \(error)")
        }
        guard let (digest, material) = ImportIntent.split(bytes) else {
            throw KeyBrokerError(
                KeyBrokerError.importIntentMissing,
                "the wrapped key does not carry the owner's import intent (EKI1 prefix and digest)"
            )
        }
        guard digest == importIntent(request).digest else {
            throw KeyBrokerError(
                KeyBrokerError.importIntentMismatch,
                "the name, type, operations, attributes, release policy or authority pins differ from the owner's"
            )
        }
        // An owner who set a release policy and named no operations keeps the data keys its key protects out of the
        // administrator's unwrap: the policy alone hands the key out (it names `unwrapKey` to allow admin unwrap).
        let operations =
            request.keyOperations.isEmpty && request.attributes.releasePolicy != nil
            ? KeyMaterial.defaultOperations(request.type, releasable: true) : request.keyOperations
        // The owner's policy is the owner's: the broker can't tell an owner from its administrator (the host, which
        // also calls this enclave directly), so a mutable policy could be replaced by one naming the host's enclave.
        var attributes = request.attributes
        if attributes.releasePolicy != nil { attributes.immutable = true }
        return try store(
            KeyMaterial(bytes: material, type: request.type),
            name: request.name,
            version: request.version,
            operations: operations,
            attributes: attributes
        )
    }

    /// The import intent `request` states, with the pins this broker trusts now (every authority it trusts, as its
    /// evidence binds them and an importing owner verified): what the owner's wrapped digest must equal.
    public func importIntent(_ request: BrokerImportKeyRequest) -> ImportIntent {
        Self.importIntent(request, pins: pinnedAuthorities)
    }

    /// The import intent `request` states with `pins` (a broker's ``pinnedAuthorities``).
    public static func importIntent(
        _ request: BrokerImportKeyRequest,
        pins authorityPins: AuthorityPins
    )
        -> ImportIntent
    {
        var pins: [String: Set<String>] = [:]
        for authority in authorityPins.authorities { pins[authority.url] = Set(authority.thumbprints) }
        return ImportIntent(
            name: request.name,
            type: request.type.rawValue,
            operations: request.keyOperations,
            exportable: request.attributes.exportable,
            immutable: request.attributes.immutable,
            releasePolicy: request.attributes.releasePolicy,
            pins: pins
        )
    }

    /// Changes a key's attributes; refused when its policy is immutable, as every key imported under a release policy
    /// is (``importKey(_:)``; keys imported before that keep the flag they were stored with). The key is pinned again,
    /// to the signing certificates the broker trusts now for the authorities the new policy names (an immutable key's
    /// pins never change: a new signing certificate of its authority needs a new key version).
    public func updatePolicy(_ request: BrokerUpdatePolicyRequest) throws(KeyBrokerError) -> StoredKey {
        let (material, _) = try KeyEnvelope.open(request.key, master: keyring.masterKey)
        guard !request.key.attributes.immutable else {
            throw KeyBrokerError(KeyBrokerError.policyImmutable, "the key's release policy is immutable")
        }
        try Self.check(name: request.key.name, version: request.key.version, attributes: request.attributes)
        return try store(
            material,
            name: request.key.name,
            version: request.key.version,
            operations: request.key.keyOperations,
            attributes: request.attributes
        )
    }

    /// Unwraps a data key with a stored key: `RSA-OAEP-256` (RSA keys), `A256KW` (AES keys), `ECDH-ES+A256KW` (a
    /// compact JWE to an EC key).
    ///
    /// - Throws: ``KeyBrokerError`` `KeyOperationNotAllowed` unless the key's operations (as its envelope binds them)
    ///   include `unwrapKey` or `decrypt`: a key its owner imported under a release policy without them is released
    ///   only under that policy.
    public func unwrap(_ request: BrokerUnwrapRequest) throws(KeyBrokerError) -> [UInt8] {
        let (material, _) = try KeyEnvelope.open(request.key, master: keyring.masterKey)
        try Self.require(ImportIntent.unwrapOperations, of: request.key, for: "unwrap")
        switch (request.algorithm, material.secret) {
        case ("RSA-OAEP-256", .rsa(let key)):
            guard let decrypting = try? _RSA.Encryption.PrivateKey(derRepresentation: key.derRepresentation),
                let plaintext = try? decrypting.decrypt(request.ciphertext, padding: .PKCS1_OAEP_SHA256)
            else { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the ciphertext does not decrypt") }
            return Array(plaintext)
        case ("A256KW", .aes(let key)):
            do { return try AESKeyWrap.unwrap(request.ciphertext, using: key) } catch {
                throw KeyBrokerError(KeyBrokerError.invalidRequest, "the ciphertext does not unwrap")
            }
        case ("ECDH-ES+A256KW", .p256(let key)):
            // A compact JWE to the key's public part (`enclave keys encrypt` with an EC key).
            guard let jwe = String(validating: request.ciphertext, as: UTF8.self),
                let agreement = try? P256.KeyAgreement.PrivateKey(rawRepresentation: key.rawRepresentation),
                let plaintext = try? ECDHESJWE.decrypt(jwe, with: agreement).plaintext
            else { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the ciphertext does not unwrap") }
            return plaintext
        case ("ECDH-ES+A256KW", .p384(let key)):
            guard let jwe = String(validating: request.ciphertext, as: UTF8.self),
                let agreement = try? P384.KeyAgreement.PrivateKey(rawRepresentation: key.rawRepresentation),
                let plaintext = try? ECDHESJWE.decrypt(jwe, with: agreement).plaintext
            else { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the ciphertext does not unwrap") }
            return plaintext
        default:
            throw KeyBrokerError(
                KeyBrokerError.invalidRequest,
                "\(request.algorithm) does not apply to a \(request.key.type.rawValue) key"
            )
        }
    }

    /// Wraps a data key with a stored key: `RSA-OAEP-256` (RSA keys), `A256KW` (AES keys).
    ///
    /// - Throws: ``KeyBrokerError`` `KeyOperationNotAllowed` unless the key's operations (as its envelope binds them)
    ///   include `wrapKey` or `encrypt`.
    public func wrap(_ request: BrokerWrapRequest) throws(KeyBrokerError) -> [UInt8] {
        let (material, _) = try KeyEnvelope.open(request.key, master: keyring.masterKey)
        try Self.require(ImportIntent.wrapOperations, of: request.key, for: "wrap")
        switch (request.algorithm, material.secret) {
        case ("RSA-OAEP-256", .rsa(let key)):
            guard let encrypting = try? _RSA.Encryption.PublicKey(derRepresentation: key.publicKey.derRepresentation),
                let ciphertext = try? encrypting.encrypt(request.plaintext, padding: .PKCS1_OAEP_SHA256)
            else { throw KeyBrokerError(KeyBrokerError.invalidRequest, "the plaintext does not encrypt") }
            return Array(ciphertext)
        case ("A256KW", .aes(let key)):
            do { return try AESKeyWrap.wrap(request.plaintext, using: key) } catch {
                throw KeyBrokerError(KeyBrokerError.invalidRequest, "\(error)")
            }
        default:
            throw KeyBrokerError(
                KeyBrokerError.invalidRequest,
                "\(request.algorithm) does not apply to a \(request.key.type.rawValue) key"
            )
        }
    }

    /// Refuses `KeyOperationNotAllowed` unless `key`'s operations include one of `operations`. Called after the
    /// envelope opened, so the operations checked are those it authenticates (a host can't add one to a stored key).
    static func require(
        _ operations: Set<String>,
        of key: StoredKey,
        for action: String
    ) throws(KeyBrokerError) {
        guard key.keyOperations.contains(where: operations.contains) else {
            throw KeyBrokerError(
                KeyBrokerError.keyOperationNotAllowed,
                "key \(key.name) version \(key.version) does not allow \(action) (its operations: "
                    + "\(key.keyOperations.joined(separator: ", ")); it needs one of "
                    + "\(operations.sorted().joined(separator: ", "))"
            )
        }
    }

    func store(
        _ material: KeyMaterial,
        name: String,
        version: String,
        operations: [String],
        attributes: BrokerKeyAttributes
    ) throws(KeyBrokerError) -> StoredKey {
        let operations = operations.isEmpty ? KeyMaterial.defaultOperations(material.type) : operations
        let blob = try KeyEnvelope.seal(
            material,
            master: keyring.masterKey,
            name: name,
            version: version,
            operations: operations,
            attributes: attributes,
            pins: pins(for: attributes)
        )
        return StoredKey(
            name: name,
            version: version,
            type: material.type,
            keyOperations: operations,
            attributes: attributes,
            publicKey: material.publicJWK(keyID: keyID(name: name, version: version)),
            blob: blob
        )
    }

    /// The pins a key with `attributes` is sealed with: for each authority its release policy names, the thumbprints
    /// of the signing certificates the broker trusts for it now (none for a key without a policy).
    func pins(for attributes: BrokerKeyAttributes) -> AuthorityPins {
        guard let bytes = attributes.releasePolicy, let policy = Self.policies.policy(bytes) else { return .none }
        return verifier.pins(for: policy.authorities.map(\.normalizedAuthority))
    }

    /// `https://broker/keys/name/version`.
    func keyID(name: String, version: String) -> String {
        var base = self.name
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/keys/\(name)/\(version)"
    }

    static func check(name: String, version: String, attributes: BrokerKeyAttributes) throws(KeyBrokerError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        for (what, value) in [("name", name), ("version", version)] {
            guard !value.isEmpty, value.count <= maximumNameLength, value.allSatisfy(allowed.contains) else {
                throw KeyBrokerError(
                    KeyBrokerError.invalidRequest,
                    "the key \(what) must be 1 to \(maximumNameLength) letters, digits and dashes"
                )
            }
        }
        if attributes.exportable, attributes.releasePolicy == nil {
            throw KeyBrokerError(KeyBrokerError.invalidRequest, "an exportable key needs a release policy")
        }
        if let policy = attributes.releasePolicy {
            do { _ = try ReleasePolicy(jsonBytes: Data(policy)) } catch {
                throw KeyBrokerError(KeyBrokerError.invalidRequest, "the release policy is refused: \(error)")
            }
        }
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
