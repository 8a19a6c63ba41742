internal import AttestationAPI
public import Crypto
internal import EnclaveCore
public import Foundation
internal import SwiftASN1
public import X509
internal import _CryptoExtras

extension AttestationServiceCore {
    /// The policy of `type` now in force: its text and hash (the default one when none was set).
    public func currentPolicy(type: AttestationType) async throws -> (text: String, hash: String, isDefault: Bool) {
        if let stored = try await store.policy(type: type.rawValue) { return (stored.text, stored.hash, false) }
        return (AttestationPolicy.defaultText, Self.hash(AttestationPolicy.defaultText), true)
    }

    /// What a management request asks for.
    public enum PolicyOperation: String, Sendable {
        case set
        case reset
    }

    /// Claims of a signed management request's payload, beside MAA's `AttestationPolicy`: the attestation type it
    /// is for, the operation, and a version that must exceed every version accepted before for that type.
    public static let policyTypeClaim = "x-enclavekit-policy-type"
    public static let policyOperationClaim = "x-enclavekit-policy-operation"
    public static let policyVersionClaim = "x-enclavekit-policy-version"
    /// The service a signed management request is for: its issuer URL (``Configuration/issuer``), so that a request
    /// signed for one service cannot be replayed on another that trusts the same signer.
    public static let policyAudienceClaim = "x-enclavekit-policy-audience"

    /// Set the policy of `type` from a JWS as MAA accepts it: payload `{"AttestationPolicy": base64url(text)}`.
    ///
    /// With policy signers configured the JWS must be signed by one of them (its certificate is the header's
    /// `x5c[0]`) and its payload must name this service (`x-enclavekit-policy-audience`: its issuer URL), this type
    /// (`x-enclavekit-policy-type`), the operation `set` (`x-enclavekit-policy-operation`) and a version
    /// (`x-enclavekit-policy-version`, a JSON integer) greater than any accepted before for this type, so that no
    /// signed request can be replayed, moved to another type or to another service. Without signers
    /// the JWS is unsigned (`alg: none`) and `credential` must be the administrator's token. The text must parse.
    /// - Returns: a policy token recording the change (`x-ms-policy-result`, hash, signer).
    public func setPolicy(
        type: AttestationType,
        jws: String,
        credential: String? = nil,
        at time: Date = Date()
    ) async throws -> String {
        let request = try await authorize(.set, type: type, jws: jws, credential: credential)
        guard let text = request.policyText else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "the body is not a JWS whose payload is {\"AttestationPolicy\": base64url(policy)}"
            )
        }
        do {
            _ = try AttestationPolicy(text: text)
        } catch {
            throw ServiceError.badRequest("InvalidPolicy", error.description)
        }
        try await advanceVersion(request, type: type)
        let hash = Self.hash(text)
        try await store.setPolicy(StoredPolicy(text: text, jws: jws, hash: hash, updated: time), type: type.rawValue)
        logger.notice(
            "policy updated",
            metadata: ["type": "\(type.rawValue)", "hash": "\(hash)", "by": "\(request.signer)"]
        )
        return try await policyToken(
            [
                "x-ms-policy-result": .string("Updated"), "x-ms-policy-hash": .string(hash),
                "x-ms-policy-signer": .string(request.signer),
            ],
            at: time
        )
    }

    /// Reset the policy of `type` to the default: with policy signers, `jws` is a signed request naming this type,
    /// the operation `reset` and a new version; without, `credential` must be the administrator's token.
    public func resetPolicy(
        type: AttestationType,
        jws: String? = nil,
        credential: String? = nil,
        at time: Date = Date()
    ) async throws -> String {
        let request = try await authorize(.reset, type: type, jws: jws, credential: credential)
        try await advanceVersion(request, type: type)
        try await store.setPolicy(nil, type: type.rawValue)
        logger.notice("policy reset", metadata: ["type": "\(type.rawValue)", "by": "\(request.signer)"])
        return try await policyToken(["x-ms-policy-result": .string("Removed")], at: time)
    }

    /// A management request that passed authorization.
    struct AuthorizedRequest {
        var policyText: String?
        var signer: String
        var version: Int64?
    }

    /// Who may change policies: a configured policy signer (signed request naming type, operation and a fresh
    /// version) or, without signers, the administrator's bearer token. Nobody anonymous, ever.
    func authorize(
        _ operation: PolicyOperation,
        type: AttestationType,
        jws: String?,
        credential: String?
    ) async throws -> AuthorizedRequest {
        let body = jws?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if configuration.policySigners.isEmpty {
            guard let admin = configuration.adminCredential else {
                throw ServiceError.unauthorized(
                    "AdminCredentialRequired",
                    "this service has neither a policy signer nor an administrator credential: policies are fixed"
                )
            }
            guard let credential, !credential.isEmpty else {
                throw ServiceError.unauthorized(
                    "AdminCredentialRequired",
                    "changing a policy needs the administrator's token (Authorization: Bearer …)"
                )
            }
            guard try await currentAdminCredential(configured: admin).matches(credential) else {
                throw ServiceError.unauthorized("AdminCredentialInvalid", "the administrator token is not valid")
            }
            guard !body.isEmpty else { return AuthorizedRequest(policyText: nil, signer: "(administrator)") }
            let document = try Self.parsePolicyJWS(body)
            guard document.algorithm.lowercased() == "none" else {
                throw ServiceError.unauthorized("PolicySignerUnknown", "no policy signer is configured")
            }
            guard document.signature.isEmpty else {
                throw ServiceError.badRequest("InvalidPolicyDocument", "an unsigned policy has an empty signature")
            }
            // Claims naming type, operation or version are optional here, but hold when present.
            let version = try checkClaims(document, operation: operation, type: type, required: false)
            return AuthorizedRequest(policyText: document.policyText, signer: "(administrator)", version: version)
        }
        guard !body.isEmpty else {
            throw ServiceError.unauthorized(
                "PolicySignatureRequired",
                "this service accepts only requests signed by a configured policy signer"
            )
        }
        let document = try Self.parsePolicyJWS(body)
        guard document.algorithm.lowercased() != "none" else {
            throw ServiceError.unauthorized(
                "PolicySignatureRequired",
                "this service accepts only policies signed by a configured policy signer"
            )
        }
        guard let chain = document.header["x5c"] as? [String], let first = chain.first,
            let der = Data(base64Encoded: first), let certificate = try? Certificate(derEncoded: Array(der)),
            configuration.policySigners.contains(certificate)
        else {
            throw ServiceError.unauthorized("PolicySignerUnknown", "the policy is not signed by a configured signer")
        }
        guard let signature = Base64URL.decode(document.signature),
            Self.verify(
                signature,
                over: document.signedBytes,
                algorithm: document.algorithm,
                key: certificate.publicKey
            )
        else {
            throw ServiceError.unauthorized("PolicySignatureInvalid", "the policy signature does not verify")
        }
        let version = try checkClaims(document, operation: operation, type: type, required: true)
        return AuthorizedRequest(
            policyText: document.policyText,
            signer: certificate.subject.description,
            version: version
        )
    }

    /// Record the request's version as the newest for `type`, or refuse it as a replay.
    private func advanceVersion(_ request: AuthorizedRequest, type: AttestationType) async throws {
        guard let version = request.version else { return }
        guard try await store.advancePolicyVersion(type: type.rawValue, to: version) else {
            throw ServiceError(
                status: 403,
                code: "PolicyVersionNotNewer",
                message: "\(Self.policyVersionClaim) \(version) is not greater than the last one accepted for "
                    + "\(type.rawValue): the request is a replay or out of order"
            )
        }
    }

    /// The administrator token's digest in force: the one in the store (shared by every instance, replaced by a
    /// rotation), read at most every ``Configuration/adminCredentialRefresh`` seconds, so that a rotated token stops
    /// working on running replicas too; the configured one while the store has none.
    func currentAdminCredential(configured: AdminCredential) async throws -> AdminCredential {
        let now = ContinuousClock.now
        if let cached = adminDigestCache.withLock({ $0 }),
            now - cached.read < .milliseconds(Int64(configuration.adminCredentialRefresh * 1000))
        {
            return cached.credential ?? configured
        }
        let stored = try await store.storedAdminTokenDigest().map { AdminCredential(digest: $0) }
        adminDigestCache.withLock { $0 = (stored, now) }
        return stored ?? configured
    }

    /// The audience, type, operation and version a management request's payload names, checked against this
    /// service and the route.
    /// - Returns: the version, when present.
    func checkClaims(
        _ document: PolicyDocument,
        operation: PolicyOperation,
        type: AttestationType,
        required: Bool
    ) throws -> Int64? {
        let payload = document.payload
        let named = payload[Self.policyTypeClaim]
        let action = payload[Self.policyOperationClaim]
        let number = payload[Self.policyVersionClaim]
        let audience = payload[Self.policyAudienceClaim]
        if required, named == nil || action == nil || number == nil || audience == nil {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "a signed policy request names \(Self.policyAudienceClaim) (this service's issuer URL), "
                    + "\(Self.policyTypeClaim), \(Self.policyOperationClaim) (set or reset) and "
                    + "\(Self.policyVersionClaim) (an integer greater than the last one accepted)"
            )
        }
        if let audience {
            guard let text = audience as? String, Self.sameService(text, issuer) else {
                throw ServiceError(
                    status: 403,
                    code: "PolicyAudienceMismatch",
                    message: "the request is for the service \(ServiceError.quote(String("\(audience)".prefix(256)))), "
                        + "not \(issuer)"
                )
            }
        }
        return try Self.checkTypeOperationVersion(
            named: named,
            action: action,
            number: number,
            literal: document.rawMembers[Self.policyVersionClaim],
            operation: operation,
            type: type
        )
    }

    /// Whether two service URLs name the same service (a trailing `/` aside).
    static func sameService(_ named: String, _ issuer: String) -> Bool {
        func trimmed(_ url: String) -> String { url.hasSuffix("/") ? String(url.dropLast()) : url }
        return trimmed(named) == trimmed(issuer)
    }

    static func checkTypeOperationVersion(
        named: Any?,
        action: Any?,
        number: Any?,
        literal: String?,
        operation: PolicyOperation,
        type: AttestationType
    ) throws -> Int64? {
        if let named {
            guard let text = named as? String, AttestationType(pathComponent: text) == type else {
                throw ServiceError(
                    status: 403,
                    code: "PolicyTypeMismatch",
                    message:
                        "the request is for attestation type \(String("\(named)".prefix(64))), not \(type.rawValue)"
                )
            }
        }
        if let action {
            guard let text = action as? String, text.lowercased() == operation.rawValue else {
                throw ServiceError(
                    status: 403,
                    code: "PolicyOperationMismatch",
                    message:
                        "the request is for the operation \(String("\(action)".prefix(64))), not \(operation.rawValue)"
                )
            }
        }
        guard let number else { return nil }
        // A JSON integer literal: not `true`, `2.0` or `1e3`, which parsers read differently.
        guard let literal, !literal.isEmpty, literal.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            literal.utf8.count <= 16, let version = Int64(literal), number is NSNumber, version > 0, version < 1 << 53
        else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "\(policyVersionClaim) is not a positive JSON integer literal"
            )
        }
        return version
    }

    /// A policy JWS taken apart: header, payload, the bytes signed, the signature and the policy text if any.
    struct PolicyDocument {
        var header: [String: Any]
        var payload: [String: Any]
        var algorithm: String
        var signedBytes: [UInt8]
        var signature: String
        var policyText: String?
        /// The raw text of the payload's members, by name (checked free of duplicate names).
        var rawMembers: [String: String] = [:]
    }

    static func parsePolicyJWS(_ jws: String) throws -> PolicyDocument {
        let parts = jws.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(String(parts[0])),
            let payloadBytes = Base64URL.decode(String(parts[1]))
        else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "the body is not a JWS whose payload is {\"AttestationPolicy\": base64url(policy)}"
            )
        }
        _ = try StrictJSON(headerBytes, what: "the policy request's header")
        let members = try StrictJSON(payloadBytes, what: "the policy request's payload").topLevelValues
        guard let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
            let payload = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any]
        else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "the body is not a JWS whose payload is {\"AttestationPolicy\": base64url(policy)}"
            )
        }
        var text: String?
        if let encoded = payload["AttestationPolicy"] {
            guard let encoded = encoded as? String, let bytes = Base64URL.decode(encoded),
                let decoded = String(validating: bytes, as: UTF8.self)
            else {
                throw ServiceError.badRequest("InvalidPolicyDocument", "AttestationPolicy is not base64url UTF-8")
            }
            text = decoded
        }
        return PolicyDocument(
            header: header,
            payload: payload,
            algorithm: header["alg"] as? String ?? "",
            signedBytes: Array((parts[0] + "." + parts[1]).utf8),
            signature: String(parts[2]),
            policyText: text,
            rawMembers: members
        )
    }

    /// A signed token about the policy of `type`: `x-ms-policy` (its text) and its hash.
    public func policyToken(type: AttestationType, at time: Date = Date()) async throws -> String {
        let current = try await currentPolicy(type: type)
        return try await policyToken(
            ["x-ms-policy": .string(current.text), "x-ms-policy-hash": .string(current.hash)],
            at: time
        )
    }

    private func policyToken(_ claims: [String: TokenValue], at time: Date) async throws -> String {
        var token = claims
        let now = Int(time.timeIntervalSince1970)
        token["iss"] = .string(issuer)
        token["iat"] = .integer(now)
        token["nbf"] = .integer(now)
        token["exp"] = .integer(now + Int(configuration.tokenLifetime))
        token["x-enclavekit-token-kind"] = .string("policy")
        // Its own `typ` and no attestation claims: no relying party can take it for an attestation token.
        return try await signer.sign(token, jku: issuer + "/certs", type: TokenSigner.policyTokenType)
    }

    /// An unsigned policy JWS (`alg: none`) for `text`, as MAA's tools make them.
    public static func unsignedPolicyJWS(_ text: String) -> String {
        let header = Base64URL.encode(Array("{\"alg\":\"none\"}".utf8))
        let payload = Base64URL.encode(
            Array("{\"AttestationPolicy\":\"\(Base64URL.encode(Array(text.utf8)))\"}".utf8)
        )
        return header + "." + payload + "."
    }

    /// A signed policy management request (ES256 with `key`, `certificate` in `x5c`): MAA's payload
    /// `{"AttestationPolicy": base64url(text)}` (no policy for a reset) with the service it is for (`audience`: the
    /// service's issuer URL), the attestation type, the operation and `version`, which must exceed the last version
    /// the service accepted for `type`.
    public static func signedPolicyJWS(
        _ text: String?,
        audience: String,
        type: AttestationType,
        operation: PolicyOperation = .set,
        version: Int64,
        key: P256.Signing.PrivateKey,
        certificate: Certificate
    ) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let x5c = Data(serializer.serializedBytes).base64EncodedString()
        let header = Base64URL.encode(Array("{\"alg\":\"ES256\",\"x5c\":[\"\(x5c)\"]}".utf8))
        var members: [String: TokenValue] = [
            policyTypeClaim: .string(type.rawValue), policyOperationClaim: .string(operation.rawValue),
            policyVersionClaim: .integer(Int(version)), policyAudienceClaim: .string(audience),
        ]
        if let text { members["AttestationPolicy"] = .string(Base64URL.encode(Array(text.utf8))) }
        let payload = Base64URL.encode(Array(TokenValue.object(members).description.utf8))
        let signature = try key.signature(for: Array((header + "." + payload).utf8))
        return header + "." + payload + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }

    static func verify(
        _ signature: [UInt8],
        over message: [UInt8],
        algorithm: String,
        key: Certificate.PublicKey
    ) -> Bool {
        switch algorithm {
        case "ES256":
            guard let key = P256.Signing.PublicKey(key),
                let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: message)
        case "ES384":
            guard let key = P384.Signing.PublicKey(key),
                let parsed = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: message)
        case "RS256":
            guard let key = _RSA.Signing.PublicKey(key) else { return false }
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature),
                for: SHA256.hash(data: message),
                padding: .insecurePKCS1v1_5
            )
        default:
            return false
        }
    }
}
