internal import AttestationAPI
public import Crypto
internal import EnclaveCore
public import Foundation
public import KeyBrokerInterface
internal import KeyReleaseFormats

extension KeyBroker {
    /// The identity of the granting replica's enclave, which a newcomer must match.
    public struct ReplicaIdentity: Hashable, Sendable {
        /// The signer (MRSIGNER), hex.
        public var signerID: String
        /// The product ID.
        public var productID: Int
        /// The security version.
        public var securityVersion: Int
        /// Whether the granting enclave is a debug enclave.
        public var debug: Bool

        /// An identity.
        public init(signerID: String, productID: Int, securityVersion: Int, debug: Bool) {
            self.signerID = signerID
            self.productID = productID
            self.securityVersion = securityVersion
            self.debug = debug
        }
    }

    /// The content type of a join grant's JWE.
    public static let keyringContentType = "application/vnd.enclavekit.keybroker-keyring"

    /// Grants the keyring to a newcomer replica: its token must verify (a trusted authority, fresh, signed with a
    /// certificate also pinned in the keyring, ``BrokerKeyring/authorityPins``) and say the
    /// same signer and product, a security version at least `granter`'s, not debug unless `granter` is, and hold
    /// the offered key in `x-ms-runtime.keys` (the evidence binds it). Answers the keyring as a JWE to that key.
    ///
    /// - Throws: ``KeyBrokerError``: the token's refusal codes, or `JoinRefused` naming the failed check.
    public func grantJoin(
        _ request: BrokerJoinGrantRequest,
        granter: ReplicaIdentity,
        now: Date
    ) throws(KeyBrokerError) -> BrokerJoinGrantResponse {
        let verified = try verifier.verify(request.token, now: now)
        let claims = verified.claims
        func refuse(_ reason: String) -> KeyBrokerError { KeyBrokerError(BrokerRefusal.Code.joinRefused, reason) }
        // The keyring goes only to a newcomer attested under a certificate pinned when the keyring was made: a host
        // that reopened this replica trusting a certificate of its own could otherwise mint the newcomer's token.
        guard keyring.authorityPins.covers(url: verified.normalizedIssuer, thumbprint: verified.keyID) else {
            throw refuse("the newcomer's token is signed by a certificate the keyring was not made trusting")
        }
        guard case .string(let signer)? = claims["x-ms-sgx-mrsigner"],
            signer.lowercased() == granter.signerID.lowercased()
        else { throw refuse("the newcomer has another signer") }
        guard case .integer(let product)? = claims["x-ms-sgx-product-id"], product == granter.productID else {
            throw refuse("the newcomer has another product ID")
        }
        guard case .integer(let svn)? = claims["x-ms-sgx-svn"], svn >= granter.securityVersion else {
            throw refuse("the newcomer's security version is lower than this replica's")
        }
        guard case .bool(let debug)? = claims["x-ms-sgx-is-debuggable"], !debug || granter.debug else {
            throw refuse("the newcomer is a debug enclave and this replica is not")
        }
        guard let offered = try? JSONDecoder().decode(WrapJWK.self, from: Data(request.key.utf8)),
            offered.kty == "EC", offered.crv == "P-256"
        else { throw refuse("the offered key is not an EC P-256 JWK") }
        guard case .object(let runtime)? = claims["x-ms-runtime"], case .array(let keys)? = runtime["keys"],
            keys.contains(where: { value in
                guard let jwk = try? JSONDecoder().decode(WrapJWK.self, from: Data(value.jsonText.utf8)) else {
                    return false
                }
                return jwk.kty == offered.kty && jwk.crv == offered.crv && jwk.x == offered.x && jwk.y == offered.y
            })
        else { throw refuse("the evidence does not bind the offered key") }
        do {
            let grant = try ECDHESJWE.encrypt(
                keyring.bytes,
                to: try offered.wrapTarget(),
                contentType: Self.keyringContentType
            )
            let runtime = Self.joinGrantRuntime(newcomer: offered, keyring: keyring, authorities: pinnedAuthorities)
            return BrokerJoinGrantResponse(grant: grant, runtimeData: Array(runtime.jsonText.utf8))
        } catch { throw refuse("the keyring could not be wrapped to the offered key") }
    }

    /// The `purpose` of a grant's runtime data, so that no other evidence of a broker enclave passes for a grant's.
    public static let joinGrantPurpose = "enclavekit.keybroker.join-grant.v1"

    /// The keyring's public identity a grant binds: base64url SHA-256 of the import key's public DER and the signing
    /// certificate's DER (length-prefixed), so that a newcomer can tell it got exactly the keyring the granter attested.
    public static func keyringIdentity(_ keyring: BrokerKeyring) -> String {
        let importKey = Array(keyring.importKey.publicKey.derRepresentation)
        var hasher = SHA256()
        for part in [importKey, keyring.signingCertificate] {
            withUnsafeBytes(of: UInt32(part.count).bigEndian) { hasher.update(bufferPointer: $0) }
            hasher.update(data: part)
        }
        return Base64URL.encode(Array(hasher.finalize()))
    }

    /// The runtime data a granter's evidence binds: `{"purpose", "newcomer": {kty, crv, x, y}, "keyring": identity,
    /// "authorities": the granter's pins}`.
    static func joinGrantRuntime(
        newcomer: WrapJWK,
        keyring: BrokerKeyring,
        authorities: AuthorityPins = .none
    ) -> TokenValue {
        .object([
            "authorities": authorities.runtimeValue,
            "purpose": .string(joinGrantPurpose),
            "newcomer": .object([
                "kty": .string(newcomer.kty), "crv": .string(newcomer.crv ?? ""), "x": .string(newcomer.x ?? ""),
                "y": .string(newcomer.y ?? ""),
            ]),
            "keyring": .string(keyringIdentity(keyring)),
        ])
    }

    /// The newcomer's side: the keyring from a grant, with the ephemeral key it offered, only when the granter is
    /// authenticated as a genuine broker enclave. `granterToken` (the attestation token of the evidence the granter
    /// enclave made with the grant) must verify with `authorities` (the ones this broker pins for release tokens),
    /// name the newcomer's own signer and product, a security version at least the newcomer's (an older build of the
    /// same signer may be flawed and grant a keyring its attacker knows; with the check the other way in
    /// ``grantJoin(_:granter:now:)``, replicas join only at one security version), not be debug (unless the newcomer
    /// is), and its `x-ms-runtime` must bind the grant's purpose, this newcomer's ephemeral key and exactly the public
    /// identity (``keyringIdentity(_:)``) of the keyring that decrypts. The keyring comes back
    /// ``BrokerKeyring/joinedUnder`` the authority and certificate that signed `granterToken`: a broker opens it only
    /// while trusting that certificate.
    ///
    /// - Throws: ``KeyBrokerError`` `JoinRefused` naming the failed check on the granter, `KeyringInvalid` when the
    ///   grant does not decrypt or is no keyring.
    public static func completeJoin(
        grant: String,
        granterToken: String,
        with key: P256.KeyAgreement.PrivateKey,
        authorities: [BrokerAuthority],
        newcomer: ReplicaIdentity,
        now: Date
    ) throws(KeyBrokerError) -> BrokerKeyring {
        func refuse(_ reason: String) -> KeyBrokerError {
            KeyBrokerError(BrokerRefusal.Code.joinRefused, "granter: \(reason)")
        }
        guard !authorities.isEmpty else { throw refuse("no authority is pinned to verify the granter's token") }
        var trusted: [TrustedAuthority] = []
        for authority in authorities { trusted.append(try TrustedAuthority(authority)) }
        let verified: ReleaseTokenVerifier.Verified
        do { verified = try ReleaseTokenVerifier(authorities: trusted).verify(granterToken, now: now) } catch {
            throw refuse("its token does not verify: \(error.code): \(error.reason)")
        }
        let claims = verified.claims
        // The certificate this newcomer's host had it trust for the granter: recorded with the keyring (sealed), which
        // then opens only while the broker trusts it (a certificate of the host's own stays visible in the evidence).
        let joinedUnder: AuthorityPins
        do { joinedUnder = try AuthorityPins([verified.normalizedIssuer: [verified.keyID]]) } catch {
            throw refuse("its token's authority or certificate can't be recorded: \(error)")
        }
        guard case .string(let signer)? = claims["x-ms-sgx-mrsigner"],
            signer.lowercased() == newcomer.signerID.lowercased()
        else { throw refuse("another signer than this enclave's") }
        guard case .integer(let product)? = claims["x-ms-sgx-product-id"], product == newcomer.productID else {
            throw refuse("another product ID than this enclave's")
        }
        // An older build of this signer and product may be a flawed one whose keyring its attacker knows: owners would
        // verify this (fixed) enclave and import their keys under that keyring. Upgrades run the new build on a
        // replica's own sealed keyring (the signer policy opens it at a higher version) and join from there.
        guard case .integer(let svn)? = claims["x-ms-sgx-svn"] else {
            throw refuse("its token states no security version (x-ms-sgx-svn)")
        }
        guard svn >= newcomer.securityVersion else {
            throw refuse(
                "its security version (\(svn)) is lower than this enclave's (\(newcomer.securityVersion)): join from "
                    + "a replica upgraded to this version (the new build opens the older one's sealed keyring)"
            )
        }
        guard case .bool(let debug)? = claims["x-ms-sgx-is-debuggable"], !debug || newcomer.debug else {
            throw refuse("a debug enclave (its keyring may be known outside it)")
        }
        guard case .object(let runtime)? = claims["x-ms-runtime"],
            runtime["purpose"] == .string(joinGrantPurpose)
        else { throw refuse("its evidence is not a join grant's") }
        let own = WrapJWK(p256: key.publicKey)
        guard case .object(let bound)? = runtime["newcomer"], bound["kty"] == .string(own.kty),
            bound["crv"] == .string(own.crv ?? ""), bound["x"] == .string(own.x ?? ""),
            bound["y"] == .string(own.y ?? "")
        else { throw refuse("its evidence does not bind this newcomer's key (a grant made for another)") }
        guard case .string(let identity)? = runtime["keyring"] else {
            throw refuse("its evidence binds no keyring")
        }
        let opened: (header: ECDHESJWE.Header, plaintext: [UInt8])
        do { opened = try ECDHESJWE.decrypt(grant, with: key) } catch {
            throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the grant does not decrypt: \(error)")
        }
        guard opened.header.cty == keyringContentType else {
            throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the grant is not a keyring")
        }
        let keyring = try BrokerKeyring(bytes: opened.plaintext)
        guard keyringIdentity(keyring) == identity else {
            throw refuse("the keyring in the grant is not the one its evidence binds")
        }
        return keyring.joined(under: joinedUnder)
    }
}
