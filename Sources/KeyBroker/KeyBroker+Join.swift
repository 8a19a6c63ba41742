internal import AttestationAPI
public import Crypto
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

    /// Grants the keyring to a newcomer replica: its token must verify (a trusted authority, fresh) and say the
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
            return BrokerJoinGrantResponse(grant: grant)
        } catch { throw refuse("the keyring could not be wrapped to the offered key") }
    }

    /// The newcomer's side: the keyring from a grant, with the ephemeral key it offered.
    public static func completeJoin(
        grant: String,
        with key: P256.KeyAgreement.PrivateKey
    ) throws(KeyBrokerError)
        -> BrokerKeyring
    {
        let opened: (header: ECDHESJWE.Header, plaintext: [UInt8])
        do { opened = try ECDHESJWE.decrypt(grant, with: key) } catch {
            throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the grant does not decrypt: \(error)")
        }
        guard opened.header.cty == keyringContentType else {
            throw KeyBrokerError(KeyBrokerError.keyringInvalid, "the grant is not a keyring")
        }
        return try BrokerKeyring(bytes: opened.plaintext)
    }
}
