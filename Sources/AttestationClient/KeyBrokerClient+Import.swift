internal import Attestation
public import AttestationAPI
internal import Crypto
internal import EnclaveCore
internal import Foundation
public import KeyReleaseFormats
internal import X509
internal import _CryptoExtras

extension KeyBrokerClient {
    /// Refusal codes of ``verifiedImportKey(attestation:expecting:)`` (``AttestationClient/Failure/code``, status 0:
    /// decided on this side, before any key material is sent).
    public enum ImportRefusal {
        /// The broker's evidence does not decode, or the attestation service refused it.
        public static let evidenceRefused = "BrokerEvidenceRefused"
        /// The token is valid but states another signer, product, a lower security version or a debug enclave.
        public static let identityMismatch = "BrokerIdentityMismatch"
        /// The import key or signing certificate the broker offers is not the one its evidence binds, or is not RSA
        /// of at least 2048 bits (P-256 for the signing key).
        public static let importKeyNotBound = "ImportKeyNotBound"
        /// The attestation authorities (or their signing certificates) the broker enclave's evidence says it trusts
        /// are not exactly the ones expected: its host may have had it trust an authority of its own choosing.
        public static let authoritiesNotExpected = "BrokerAuthoritiesNotExpected"
    }

    /// A broker enclave that ``verifiedBroker(attestation:expecting:)`` accepted: the keys its evidence binds.
    public struct VerifiedBroker: Sendable {
        /// The import key (RSA): wrap keys to import to it.
        public let importKey: KeyBrokerWebKey
        /// The release signing certificate (DER) whose P-256 key signs release answers: pin it in the enclaves that
        /// get keys released (`EnclaveContext.releaseKey`'s `brokerKey`).
        public let signingCertificate: [UInt8]
        /// The broker signing key, raw P-256 (`x ‖ y`).
        public let signingKey: [UInt8]
        /// The claims of the token the attestation service issued for the broker's evidence.
        public let claims: AttestationTokenClaims
        /// The authorities the broker enclave trusts, as its evidence binds them (checked against the expectation).
        public let authorities: [KeyBrokerExpectation.Authority]
    }

    /// The broker's import key and release signing key, after checking that a genuine broker enclave holds them:
    /// `GET /attestation` (evidence and the runtime data it binds), the evidence attested by `attestation` (which
    /// checks the binding), the token verified against that service's keys and required to state `expecting`'s
    /// identity, both keys found in the token's `x-ms-runtime.keys`, the import key equal to what `GET /importkey`
    /// answers and the signing certificate's key equal to the bound signing key; and the token's
    /// `x-ms-runtime.authorities` exactly `expecting`'s authorities (by default `attestation` itself with the signing
    /// certificates its `/certs` publishes).
    /// - Throws: ``AttestationClient/Failure`` with an ``ImportRefusal`` code, or the services' errors.
    public func verifiedBroker(
        attestation: AttestationClient,
        expecting: KeyBrokerExpectation
    ) async throws -> VerifiedBroker {
        let offered = try await self.attestation()
        guard let evidenceJSON = Base64URL.decode(offered.evidence),
            let runtimeData = Base64URL.decode(offered.runtimeData),
            let decoded = try? WireJSON.decode(AttestationEvidence.self, from: evidenceJSON),
            let evidence = try? Evidence(decoded)
        else {
            throw refusal(ImportRefusal.evidenceRefused, "the broker's evidence or runtime data does not decode")
        }
        let token: String
        let claims: AttestationTokenClaims
        do {
            token = try await attestation.attest(evidence, runtimeData: .init(data: runtimeData, dataType: .json))
            claims = try await attestation.verifier().verify(token)
        } catch let failure as AttestationClient.Failure {
            throw refusal(
                ImportRefusal.evidenceRefused,
                "the attestation service refused the broker's evidence: \(failure)"
            )
        } catch {
            throw refusal(ImportRefusal.evidenceRefused, "the broker's attestation token does not verify: \(error)")
        }
        try Self.check(claims, expecting)
        let authorities = try await checkAuthorities(claims, expecting: expecting, attestation: attestation)
        guard case .object(let runtime)? = claims["x-ms-runtime"], case .array(let bound)? = runtime["keys"] else {
            throw refusal(ImportRefusal.importKeyNotBound, "the broker's evidence binds no keys")
        }
        func isBound(_ members: [String: String]) -> Bool {
            bound.contains { value in
                guard case .object(let jwk) = value else { return false }
                return members.allSatisfy { jwk[$0.key]?.stringValue == $0.value }
            }
        }
        let current = try await importKey()
        guard let n = offered.importKey.n, let e = offered.importKey.e, current.n == n, current.e == e else {
            throw refusal(ImportRefusal.importKeyNotBound, "GET /importkey answers another key than GET /attestation")
        }
        guard isBound(["kty": "RSA", "n": n, "e": e]) else {
            throw refusal(ImportRefusal.importKeyNotBound, "the broker's evidence does not bind its import key")
        }
        guard let modulus = Base64URL.decode(n), let exponent = Base64URL.decode(e),
            let key = try? _RSA.Encryption.PublicKey(n: modulus, e: exponent), key.keySizeInBits >= 2048
        else {
            throw refusal(ImportRefusal.importKeyNotBound, "the import key is not an RSA key of at least 2048 bits")
        }
        guard let certificateDER = Data(base64Encoded: offered.certificate).map({ Array($0) }),
            let certificate = try? Certificate(derEncoded: certificateDER),
            let signing = P256.Signing.PublicKey(certificate.publicKey)
        else {
            throw refusal(
                ImportRefusal.importKeyNotBound,
                "the broker's signing certificate is not a P-256 certificate"
            )
        }
        let raw = Array(signing.rawRepresentation)
        guard
            isBound([
                "kty": "EC", "crv": "P-256", "x": Base64URL.encode(raw.prefix(32)),
                "y": Base64URL.encode(raw.suffix(32)),
            ])
        else {
            throw refusal(ImportRefusal.importKeyNotBound, "the broker's evidence does not bind its signing key")
        }
        return VerifiedBroker(
            importKey: current,
            signingCertificate: certificateDER,
            signingKey: raw,
            claims: claims,
            authorities: authorities
        )
    }

    /// The broker's import key, from ``verifiedBroker(attestation:expecting:)``.
    /// - Throws: ``AttestationClient/Failure`` with an ``ImportRefusal`` code, or the services' errors.
    public func verifiedImportKey(
        attestation: AttestationClient,
        expecting: KeyBrokerExpectation
    ) async throws -> KeyBrokerWebKey {
        try await verifiedBroker(attestation: attestation, expecting: expecting).importKey
    }

    /// Bring your own key: `material` wrapped (`RSA_AES_KEY_WRAP_256`) to the import key of a broker enclave that
    /// ``verifiedImportKey(attestation:expecting:)`` accepted, then `POST /keys/{name}/import`. With `releasePolicy`
    /// the key is exportable to enclaves that satisfy it; nothing is sent when the broker's evidence is refused.
    /// - Parameters:
    ///   - name: the key's name in the broker.
    ///   - material: the key (AES bytes, an RSA or EC private key).
    ///   - releasePolicy: Key Vault's release policy (JSON); `nil` for a key that is never released. It is sent
    ///     immutable whatever its `immutable` says (an owner's policy is never the host's to replace).
    ///   - tags: free-form tags.
    ///   - attestation: the attestation service that checks the broker's evidence.
    ///   - expecting: the broker enclave's identity.
    ///   - allowAdminUnwrap: with a release policy, whether the key keeps `unwrapKey` and `decrypt`, so that the
    ///     broker's administrator can unwrap data keys with it inside the broker (`POST …/unwrapkey`). Off by
    ///     default: the release policy is then the only way to the data keys it protects.
    /// - Throws: ``AttestationClient/Failure`` — an ``ImportRefusal`` code, or the broker's (`ImportRefused`, …;
    ///   with a release policy, `KeyNameInUse` or `KeyOwnedByImporter` for a name that has or had versions: an owner's
    ///   key goes under a name of its own).
    public func importKey(
        name: String,
        material: KeyImportMaterial,
        releasePolicy: KeyReleasePolicy? = nil,
        tags: [String: String]? = nil,
        attestation: AttestationClient,
        expecting: KeyBrokerExpectation,
        allowAdminUnwrap: Bool = false
    ) async throws -> KeyBundle {
        let releasePolicy = Self.ownerReleasePolicy(releasePolicy)
        let broker = try await verifiedBroker(attestation: attestation, expecting: expecting)
        let importKey = broker.importKey
        guard let n = importKey.n.flatMap({ Base64URL.decode($0) }),
            let e = importKey.e.flatMap({ Base64URL.decode($0) })
        else { throw refusal(ImportRefusal.importKeyNotBound, "the import key has no RSA public part") }
        let wrapped: [UInt8]
        do {
            wrapped = try RSAAESKeyWrap.wrap(
                try Self.importIntent(
                    name: name,
                    material: material,
                    releasePolicy: releasePolicy,
                    broker: broker,
                    allowAdminUnwrap: allowAdminUnwrap
                )
                .payload(material.bytes),
                to: try _RSA.Encryption.PublicKey(n: n, e: e)
            )
        } catch {
            throw refusal(ImportRefusal.importKeyNotBound, "cannot wrap to the import key: \(error)")
        }
        let key = KeyBrokerWebKey(
            kid: importKey.kid,
            kty: material.kty,
            keyOps: Self.importOperations(
                material: material,
                releasable: releasePolicy != nil,
                allowAdminUnwrap: allowAdminUnwrap
            ),
            n: material.modulus.map { Base64URL.encode($0) },
            crv: material.curve,
            keyHSM: Base64URL.encode(wrapped)
        )
        return try await self.importKey(
            name: name,
            KeyImportParameters(
                key: key,
                attributes: releasePolicy.map { _ in KeyAttributes(exportable: true) },
                releasePolicy: releasePolicy,
                tags: tags
            )
        )
    }

    /// An owner's release policy as this client sends it: always immutable, in the request and in the import intent
    /// the broker enclave checks. A current broker enclave stores every import under a policy immutable anyway; an
    /// older build of the same signer and product (which the owner's identity check accepts) would keep a mutable one
    /// replaceable by its host, and the intent binds the flag, so even that build keeps this one.
    package static func ownerReleasePolicy(_ policy: KeyReleasePolicy?) -> KeyReleasePolicy? {
        guard var policy else { return nil }
        policy.immutable = true
        return policy
    }

    /// The operations an import names, explicitly (so that the owner's intent binds them): the type's, without
    /// `unwrapKey` and `decrypt` under a release policy unless `allowAdminUnwrap`.
    public static func importOperations(
        material: KeyImportMaterial,
        releasable: Bool,
        allowAdminUnwrap: Bool
    ) -> [String] {
        ImportIntent.defaultOperations(type: material.brokerType, releasable: releasable && !allowAdminUnwrap)
    }

    /// The owner's import intent for `material` under `name` and `releasePolicy` (exportable exactly when a policy is
    /// given, operations ``importOperations(material:releasable:allowAdminUnwrap:)``), bound to the authority pins
    /// `broker`'s evidence showed and this client checked: what
    /// ``importKey(name:material:releasePolicy:tags:attestation:expecting:allowAdminUnwrap:)`` wraps with the key.
    /// - Throws: ``AttestationClient/Failure`` `InvalidReleasePolicy` when the policy's data is not base64url.
    public static func importIntent(
        name: String,
        material: KeyImportMaterial,
        releasePolicy: KeyReleasePolicy?,
        broker: VerifiedBroker,
        allowAdminUnwrap: Bool = false
    ) throws -> ImportIntent {
        var policyBytes: [UInt8]?
        if let releasePolicy {
            guard let bytes = Base64URL.decode(releasePolicy.data) else {
                throw refusal("InvalidReleasePolicy", "the release policy's data is not base64url")
            }
            policyBytes = bytes
        }
        var pins: [String: Set<String>] = [:]
        for authority in broker.authorities { pins[authority.url, default: []].formUnion(authority.thumbprints) }
        return ImportIntent(
            name: name,
            type: material.brokerType,
            operations: importOperations(
                material: material,
                releasable: releasePolicy != nil,
                allowAdminUnwrap: allowAdminUnwrap
            ),
            exportable: releasePolicy != nil,
            immutable: Self.ownerReleasePolicy(releasePolicy)?.immutable ?? false,
            releasePolicy: policyBytes,
            pins: pins
        )
    }

    static func check(_ claims: AttestationTokenClaims, _ expecting: KeyBrokerExpectation) throws {
        let signer = claims["x-ms-sgx-mrsigner"]?.stringValue?.lowercased()
        guard signer == expecting.signerID.hex.lowercased() else {
            throw refusal(
                ImportRefusal.identityMismatch,
                "the broker enclave's signer is \(signer ?? "(none)"), expected \(expecting.signerID.hex)"
            )
        }
        guard claims["x-ms-sgx-product-id"]?.integerValue == expecting.productID else {
            throw refusal(
                ImportRefusal.identityMismatch,
                "the broker enclave's product is \(claims["x-ms-sgx-product-id"]?.description ?? "(none)"), "
                    + "expected \(expecting.productID)"
            )
        }
        guard let svn = claims["x-ms-sgx-svn"]?.integerValue, svn >= expecting.minimumSecurityVersion else {
            throw refusal(
                ImportRefusal.identityMismatch,
                "the broker enclave's security version \(claims["x-ms-sgx-svn"]?.description ?? "(none)") is below "
                    + "\(expecting.minimumSecurityVersion)"
            )
        }
        if !expecting.allowDebug {
            guard claims["x-ms-sgx-is-debuggable"]?.boolValue == false else {
                throw refusal(ImportRefusal.identityMismatch, "the broker enclave is debuggable (or does not say)")
            }
        }
    }
}

private func refusal(_ code: String, _ message: String) -> AttestationClient.Failure {
    AttestationClient.Failure(status: 0, code: code, message: message)
}
