internal import AttestationAPI
internal import Crypto
internal import EnclaveCore
public import Foundation
public import KeyBrokerInterface
internal import KeyReleaseFormats
internal import _CryptoExtras

extension KeyBroker {
    /// The wraps a release can ask for (`enc`).
    public static let supportedWraps: Set<String> = ["RSA_AES_KEY_WRAP_256", "ECDH-ES+A256KW"]

    /// The release decision: the key must be exportable and its blob intact; the token must verify (see
    /// ``ReleaseTokenVerifier``) and satisfy the key's release policy; the key is wrapped to the first suitable key
    /// of the token's `x-ms-runtime.keys` and answered as a JWS signed by the broker. A refusal is an answer (with
    /// its code), never a thrown error; either way the answer carries the audit record.
    public func release(_ request: BrokerReleaseRequest, now: Date) -> BrokerReleaseResponse {
        // The token is parsed once: its claims feed the audit record (unverified until the verifier passes them)
        // and the verifier.
        let parsed: Result<ReleaseTokenVerifier.Parsed, KeyBrokerError>
        var audit: BrokerReleaseAudit
        do {
            let token = try ReleaseTokenVerifier.parse(request.target)
            parsed = .success(token)
            audit = Self.audit(token.claims, verified: false)
        } catch {
            parsed = .failure(error)
            audit = Self.audit(ReleaseTokenVerifier.unverifiedClaims(request.target) ?? [:], verified: false)
        }
        do {
            let value = try releaseValue(request, token: parsed, now: now, audit: &audit)
            return BrokerReleaseResponse(value: value, refusal: nil, audit: audit)
        } catch {
            return BrokerReleaseResponse(value: nil, refusal: error.refusal, audit: audit)
        }
    }

    func releaseValue(
        _ request: BrokerReleaseRequest,
        token: Result<ReleaseTokenVerifier.Parsed, KeyBrokerError>,
        now: Date,
        audit: inout BrokerReleaseAudit
    ) throws(KeyBrokerError) -> String {
        typealias Code = BrokerRefusal.Code
        let key = request.key
        guard key.attributes.exportable, let policyBytes = key.attributes.releasePolicy else {
            throw KeyBrokerError(Code.keyNotExportable, "the key is not exportable")
        }
        if let enc = request.enc, !Self.supportedWraps.contains(enc) {
            throw KeyBrokerError(Code.unsupportedWrap, "the wrap \(enc.prefix(32)) is not supported")
        }
        let (material, pins) = try KeyEnvelope.open(key, master: keyring.masterKey)
        guard let policy = Self.policies.policy(policyBytes) else {
            throw KeyBrokerError(Code.keyBlobInvalid, "the key's release policy does not parse")
        }
        let verified = try verifier.verify(token.get(), now: now, nonce: request.nonce)
        // The same claims the unverified record was made of, now verified.
        audit.verified = true
        if case .refused(let failure) = policy.evaluate(
            claims: verified.claims,
            normalizedIssuer: verified.normalizedIssuer
        ) {
            throw KeyBrokerError(Code.policyNotSatisfied, "the release policy is not satisfied: \(failure)")
        }
        // The token verified with a certificate the broker pins now; it must also be one the key was pinned to when
        // it was made (a certificate the host added later for the same URL releases nothing).
        guard pins.covers(url: verified.normalizedIssuer, thumbprint: verified.keyID) else {
            throw KeyBrokerError(
                Code.authorityCertificateNotPinned,
                "the token's signing certificate is not one the key is pinned to for its authority"
            )
        }
        let (target, targetKeyID) = try Self.targetKey(in: verified.claims, enc: request.enc)
        let keyHSM: KeyHSM
        do {
            switch target {
            case .rsa(let publicKey):
                let wrapped = try RSAAESKeyWrap.wrap(material.bytes, to: publicKey)
                keyHSM = KeyHSM(header: .init(kid: targetKeyID, enc: "RSA_AES_KEY_WRAP_256"), ciphertext: wrapped)
            case .p256, .p384:
                let jwe = try ECDHESJWE.encrypt(material.bytes, to: target, keyID: targetKeyID)
                keyHSM = KeyHSM(header: .init(kid: targetKeyID, enc: "ECDH-ES+A256KW"), ciphertext: Array(jwe.utf8))
            }
        } catch { throw KeyBrokerError(Code.noRuntimeKey, "the key could not be wrapped to the target: \(error)") }
        return try answer(key: key, keyHSM: keyHSM, enc: keyHSM.header.enc)
    }

    /// The first suitable key of `x-ms-runtime.keys`: allowed to encrypt, RSA ≥ 2048 or EC P-256/P-384, of the
    /// family `enc` asks for. When none is suitable the refusal names the reason of the most telling rejection.
    static func targetKey(
        in claims: [String: TokenValue],
        enc: String?
    ) throws(KeyBrokerError) -> (WrapTarget, String?) {
        typealias Code = BrokerRefusal.Code
        guard case .object(let runtime)? = claims["x-ms-runtime"], case .array(let keys)? = runtime["keys"],
            !keys.isEmpty
        else { throw KeyBrokerError(Code.noRuntimeKey, "the token has no x-ms-runtime.keys") }
        var weak = false
        var otherCurve = false
        for value in keys {
            guard case .object(let members) = value, let jwk = Self.jwk(members), jwk.allowsEncryption else {
                continue
            }
            if enc == "RSA_AES_KEY_WRAP_256", jwk.kty != "RSA" { continue }
            if enc == "ECDH-ES+A256KW", jwk.kty != "EC" { continue }
            do {
                return (try jwk.wrapTarget(), jwk.kid)
            } catch {
                if error.code == .weakKey { weak = true }
                if error.code == .unsupported, jwk.kty == "EC" { otherCurve = true }
            }
        }
        if weak { throw KeyBrokerError(Code.targetKeyTooWeak, "the token's RSA key is shorter than 2048 bits") }
        if otherCurve {
            throw KeyBrokerError(Code.unsupportedCurve, "the token's EC key is on a curve other than P-256 and P-384")
        }
        throw KeyBrokerError(Code.noRuntimeKey, "no key of x-ms-runtime.keys is usable for the wrap")
    }

    /// A `WrapJWK` from a JSON object's members, as `JSONDecoder` would make it: `kty` a string; `kid`, `use`,
    /// `crv`, `x`, `y`, `n`, `e` absent, `null` or strings; `key_ops` absent, `null` or an array of strings; other
    /// members ignored. `nil` when a member has another type.
    static func jwk(_ members: [String: TokenValue]) -> WrapJWK? {
        var wrongType = false
        func string(_ name: String) -> String? {
            switch members[name] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default:
                wrongType = true
                return nil
            }
        }
        guard case .string(let kty)? = members["kty"] else { return nil }
        var operations: [String]?
        switch members["key_ops"] {
        case nil, .null?: operations = nil
        case .array(let elements)?:
            var names: [String] = []
            for element in elements {
                guard case .string(let name) = element else { return nil }
                names.append(name)
            }
            operations = names
        default: return nil
        }
        let jwk = WrapJWK(
            kty: kty,
            kid: string("kid"),
            use: string("use"),
            key_ops: operations,
            crv: string("crv"),
            x: string("x"),
            y: string("y"),
            n: string("n"),
            e: string("e")
        )
        return wrongType ? nil : jwk
    }

    /// The release answer: a JWS `ES256` with `x5c`, payload shaped as Key Vault's release response.
    func answer(key: StoredKey, keyHSM: KeyHSM, enc: String) throws(KeyBrokerError) -> String {
        let kid = keyID(name: key.name, version: key.version)
        let encoded: String
        do { encoded = try keyHSM.encoded() } catch {
            throw KeyBrokerError(KeyBrokerError.invalidRequest, "key_hsm does not encode")
        }
        var policy: [String: TokenValue] = [
            "contentType": .string("application/json; charset=utf-8"),
            "immutable": .bool(key.attributes.immutable),
        ]
        if let bytes = key.attributes.releasePolicy { policy["data"] = .string(Base64URL.encode(bytes)) }
        let payload: TokenValue = .object([
            "request": .object(["api-version": .string("7.4"), "enc": .string(enc), "kid": .string(kid)]),
            "response": .object([
                "key": .object([
                    "key": .object([
                        "kid": .string(kid), "kty": .string(key.type.keyVaultType),
                        "key_ops": .array(key.keyOperations.map(TokenValue.string)), "key_hsm": .string(encoded),
                    ]),
                    "attributes": .object([
                        "enabled": .bool(true), "exportable": .bool(key.attributes.exportable),
                        "recoveryLevel": .string("Recoverable"),
                    ]),
                    "release_policy": .object(policy),
                ])
            ]),
        ])
        return sign(payload)
    }

    /// The parsed release policies, by their bytes: a policy is parsed once, not on every release of its key.
    static let policies = PolicyCache()

    /// A JWS compact `ES256` over `payload`, with `x5c`, `kid` and `x5t#S256` naming the signing certificate.
    func sign(_ payload: TokenValue) -> String {
        let header: TokenValue = .object([
            "alg": .string("ES256"), "kid": .string(keyring.signingKeyID),
            "x5c": .array([.string(Data(keyring.signingCertificate).base64EncodedString())]),
            "x5t#S256": .string(keyring.signingKeyID), "typ": .string("JWT"),
        ])
        let signingInput =
            Base64URL.encode(Array(TokenJSON.text(header).utf8)) + "."
            + Base64URL.encode(Array(TokenJSON.text(payload).utf8))
        let signature = (try? keyring.signingKey.signature(for: Array(signingInput.utf8)))?.rawRepresentation
        return signingInput + "." + Base64URL.encode(Array(signature ?? Data()))
    }

    /// The audit record of a token's claims.
    static func audit(_ claims: [String: TokenValue], verified: Bool) -> BrokerReleaseAudit {
        let names = [
            "x-ms-attestation-type", "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-svn", "x-ms-sgx-product-id",
            "tdx_mrtd", "x-ms-sevsnpvm-launchmeasurement",
        ]
        var selected: [String: String] = [:]
        for name in names {
            guard let value = claims[name] else { continue }
            let text: String
            if case .string(let string) = value { text = string } else { text = TokenJSON.text(value) }
            selected[name] = String(text.prefix(256))
        }
        return BrokerReleaseAudit(
            issuer: claims["iss"]?.stringValue.map { String($0.prefix(512)) },
            tokenID: claims["jti"]?.stringValue.map { String($0.prefix(256)) },
            claims: selected,
            verified: verified
        )
    }
}
