internal import AttestationAPI
public import Crypto
internal import EnclaveCore
public import Foundation
internal import SwiftASN1
public import X509
internal import _CryptoExtras

extension AttestationServiceCore {
    /// The policy of `type` now in force: its text and hash (the default one when none was set). The hash is MAA's
    /// `x-ms-policy-hash`: BASE64URL(SHA-256(BASE64URL(UTF-8 text))).
    public func currentPolicy(type: AttestationType) async throws -> (text: String, hash: String, isDefault: Bool) {
        if let stored = try await store.policy(type: type.rawValue) {
            return (stored.text, Self.hash(stored.text), false)
        }
        return (AttestationPolicy.defaultText, Self.hash(AttestationPolicy.defaultText), true)
    }

    /// The policy of `type` as MAA returns it in `x-ms-policy`: the JWS it was set with, or an unsigned JWS
    /// (`alg: none`) of the default policy.
    public func currentPolicyJWS(type: AttestationType) async throws -> String {
        if let stored = try await store.policy(type: type.rawValue) { return stored.jws }
        return Self.unsignedPolicyJWS(AttestationPolicy.defaultText)
    }

    /// What a management request asks for.
    public enum PolicyOperation: String, Sendable {
        /// Set the policy of a type (`PUT /policies/{type}`).
        case set
        /// Reset the policy of a type to the default (`POST /policies/{type}:reset`).
        case reset
        /// Add a policy management certificate (`POST /certificates:add`).
        case add
        /// Remove a policy management certificate (`POST /certificates:remove`).
        case remove
    }

    /// Claims of a signed management request's payload, beside MAA's `AttestationPolicy`: the attestation type it
    /// is for, the operation, and a version that must exceed every version accepted before for that type.
    public static let policyTypeClaim = "x-enclavekit-policy-type"
    /// The claim naming the operation (``PolicyOperation``'s raw value), so that a signed `set` can't be replayed as a
    /// `reset` or a certificate change.
    public static let policyOperationClaim = "x-enclavekit-policy-operation"
    /// The claim carrying the request's version: an integer greater than every version accepted before for that type,
    /// so that an older signed request can't be replayed.
    public static let policyVersionClaim = "x-enclavekit-policy-version"
    /// The service a signed management request is for: its issuer URL (``Configuration/issuer``), so that a request
    /// signed for one service cannot be replayed on another that trusts the same signer.
    public static let policyAudienceClaim = "x-enclavekit-policy-audience"
    /// The version counter that signed certificate changes advance (no attestation type is named this).
    static let certificatesScope = "policyCertificates"

    /// Set the policy of `type` from a JWS as MAA accepts it: payload `{"AttestationPolicy": base64url(text)}`.
    ///
    /// With policy signers (``policySigners(at:)``) the JWS must be signed by one of them (its certificate is the
    /// header's `x5c[0]`, or `jwk.x5c[0]` as Microsoft's clients send it). A request whose payload names this
    /// service (`x-enclavekit-policy-audience`: its issuer URL), this type (`x-enclavekit-policy-type`), the
    /// operation `set` (`x-enclavekit-policy-operation`) and a version (`x-enclavekit-policy-version`, a JSON
    /// integer) greater than any accepted before for this type cannot be replayed, moved to another type or to
    /// another service. A request in MAA's form (none of these claims, as Microsoft's clients make them) is
    /// accepted once only: the service records what was signed and refuses it ever after
    /// (`PolicyRequestReplayed`), so that it can be neither replayed nor moved to another type; with
    /// ``Configuration/requireVersionedPolicyRequests`` it is refused. Without signers the JWS is unsigned
    /// (`alg: none`) and `credential` must be the administrator's token. The text must parse.
    /// - Returns: a policy token recording the change: `x-ms-policy-result`, `x-ms-policy-token-hash` (base64url
    ///   SHA-256 of the JWS as sent), `x-ms-policy-signer` (the signer as a JWK with `x5c`, absent when unsigned).
    public func setPolicy(
        type: AttestationType,
        jws: String,
        credential: String? = nil,
        at time: Date = Date()
    ) async throws -> String {
        let request = try await authorize(.set, type: type, jws: jws, credential: credential, at: time)
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
        try await commit(request, scope: type.rawValue, at: time)
        let hash = Self.hash(text)
        let stored = jws.trimmingCharacters(in: .whitespacesAndNewlines)
        try await store.setPolicy(StoredPolicy(text: text, jws: stored, hash: hash, updated: time), type: type.rawValue)
        logger.notice(
            "policy updated",
            metadata: ["type": "\(type.rawValue)", "hash": "\(hash)", "by": "\(request.signer)"]
        )
        var claims = try Self.changeClaims(request)
        claims["x-ms-policy-result"] = .string("Updated")
        claims["x-ms-policy-hash"] = .string(hash)
        return try await policyToken(claims, at: time)
    }

    /// Reset the policy of `type` to the default: with policy signers, `jws` is a signed request (naming this type,
    /// the operation `reset` and a new version, or in MAA's form: an empty payload, see
    /// `commitUnversionedReset(digest:type:at:)`); without, `credential` must be the administrator's token.
    public func resetPolicy(
        type: AttestationType,
        jws: String? = nil,
        credential: String? = nil,
        at time: Date = Date()
    ) async throws -> String {
        let request = try await authorize(.reset, type: type, jws: jws, credential: credential, at: time)
        var changes = true
        if let digest = request.singleUseDigest {
            changes = try await commitUnversionedReset(digest: digest, type: type, at: time)
        } else {
            try await commit(request, scope: type.rawValue, at: time)
        }
        if changes {
            try await store.setPolicy(nil, type: type.rawValue)
            logger.notice("policy reset", metadata: ["type": "\(type.rawValue)", "by": "\(request.signer)"])
        } else {
            logger.notice(
                "policy reset repeated: the default is in force, nothing changed",
                metadata: ["type": "\(type.rawValue)", "by": "\(request.signer)"]
            )
        }
        var claims = try Self.changeClaims(request)
        claims["x-ms-policy-result"] = .string("Removed")
        return try await policyToken(claims, at: time)
    }

    /// The claims every change result carries: the request's hash and, when signed, its signer.
    private static func changeClaims(_ request: AuthorizedRequest) throws -> [String: TokenValue] {
        var claims: [String: TokenValue] = [:]
        if let hash = request.tokenHash { claims["x-ms-policy-token-hash"] = .string(hash) }
        if let certificate = request.certificate { claims["x-ms-policy-signer"] = try signerJWK(certificate) }
        return claims
    }

    /// A management request that passed authorization.
    struct AuthorizedRequest {
        var policyText: String?
        var signer: String
        var version: Int64?
        /// The signer's certificate (nil: the administrator, unsigned).
        var certificate: Certificate?
        /// The payload, for the certificate routes' `policyCertificate`.
        var payload: [String: Any] = [:]
        /// base64url SHA-256 of the JWS as sent (`x-ms-policy-token-hash`).
        var tokenHash: String?
        /// For a signed request in MAA's form (no version): hex SHA-256 of what was signed, recorded so that it is
        /// accepted once (a reset, the same bytes every time, is then a no-op for its type while the default is in
        /// force: `commitUnversionedReset(digest:type:at:)`).
        var singleUseDigest: String?
    }

    /// The policy management certificates in force: the store's (shared by every instance), which the operator's
    /// ``Configuration/policySigners`` seed (a certificate removed through `/certificates:remove` stays removed).
    public func policySigners(at time: Date = Date()) async throws -> [Certificate] {
        if !configuration.policySigners.isEmpty {
            try await store.seedPolicySigners(try configuration.policySigners.map(Self.der), at: time)
        }
        return try await store.policySigners().map { try Certificate(derEncoded: $0) }
    }

    /// Who may change policies and policy management certificates: a policy signer (a signed request) or, without
    /// signers, the administrator's bearer token. Nobody anonymous, ever.
    func authorize(
        _ operation: PolicyOperation,
        type: AttestationType?,
        jws: String?,
        credential: String?,
        at time: Date = Date()
    ) async throws -> AuthorizedRequest {
        let body = jws?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let tokenHash = body.isEmpty ? nil : Base64URL.encode(Array(SHA256.hash(data: Array(body.utf8))))
        let signers = try await policySigners(at: time)
        if signers.isEmpty {
            guard operation == .set || operation == .reset, let type else {
                throw ServiceError.unauthorized(
                    "PolicySignerUnknown",
                    "this service has no policy management certificate to sign the change: start it with "
                        + "--policy-signer CERT"
                )
            }
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
            try Self.checkPayloadShape(document, operation: operation)
            // Claims naming type, operation or version are optional here, but hold when present.
            let version = try checkClaims(document, operation: operation, type: type, required: false)
            return AuthorizedRequest(
                policyText: document.policyText,
                signer: "(administrator)",
                version: version,
                tokenHash: tokenHash
            )
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
        let certificate = try verifySignature(document, signers: signers, at: time)
        try Self.checkPayloadShape(document, operation: operation)
        let claimNames = [
            Self.policyTypeClaim, Self.policyOperationClaim, Self.policyVersionClaim, Self.policyAudienceClaim,
        ]
        var request = AuthorizedRequest(
            policyText: document.policyText,
            signer: certificate.subject.description,
            certificate: certificate,
            payload: document.payload,
            tokenHash: tokenHash
        )
        if claimNames.contains(where: { document.payload[$0] != nil }) || configuration.requireVersionedPolicyRequests {
            if let type {
                request.version = try checkClaims(document, operation: operation, type: type, required: true)
            } else {
                request.version = try checkCertificateClaims(document, operation: operation)
            }
        } else {
            // MAA's form: nothing in it names the type, the operation or a freshness value, so it is good once (a
            // reset: once for the type it is first accepted for, see `commitUnversionedReset`).
            request.singleUseDigest = Hex.encode(Array(SHA256.hash(data: document.signedBytes)))
        }
        return request
    }

    /// A request's payload fits its operation: a reset carries no policy, a policy change no certificate, a
    /// certificate change no policy, so that a request signed for one operation cannot serve as another.
    static func checkPayloadShape(_ document: PolicyDocument, operation: PolicyOperation) throws {
        let hasPolicy = document.payload["AttestationPolicy"] != nil
        let hasCertificate = document.payload["policyCertificate"] != nil
        let fits =
            switch operation {
            case .set: !hasCertificate
            case .reset: !hasPolicy && !hasCertificate
            case .add, .remove: hasCertificate && !hasPolicy
            }
        guard fits else {
            throw ServiceError(
                status: 403,
                code: "PolicyOperationMismatch",
                message: "the request's payload is not one for the operation \(operation.rawValue)"
            )
        }
    }

    /// The certificate that signed `document`, one of `signers`, after checking the signature and the
    /// certificate's validity at `time`.
    ///
    /// Not jwt-kit's ``X5CVerifier``, for reasons measured with jwt-kit 5.8 (`MicrosoftClientTests`
    /// `jwtKitX5CVerifierRefusesMAAPolicySigners`): it validates `x5c` with swift-certificates' RFC 5280 policy,
    /// which refuses a self-signed certificate presented as the signer unless it is marked as a CA ("Self-signed
    /// cert … is not marked as a CA") — and MAA policy management certificates are self-signed end-entity
    /// certificates; it reads only the header's `x5c` (Microsoft's clients send the certificate in `jwk.x5c`:
    /// `missingX5CHeader`), only registered `alg` names (they send `RSA256`: `unsupportedAlgorithm`), and only JSON
    /// payloads (their reset signs an empty one). The signature covers header and payload as sent, so such a token
    /// cannot be rewritten into a form jwt-kit accepts. The trust decision here is exact: the certificate must be
    /// one of the policy management certificates (no chain building), valid at `time`, and the signature is
    /// checked with swift-crypto.
    func verifySignature(
        _ document: PolicyDocument,
        signers: [Certificate],
        at time: Date
    ) throws -> Certificate {
        let headerChain = document.header["x5c"] as? [String]
        let jwkChain = (document.header["jwk"] as? [String: Any])?["x5c"] as? [String]
        guard let first = (headerChain ?? jwkChain)?.first, first.utf8.count <= 65536,
            let der = Data(base64Encoded: first), let certificate = try? Certificate(derEncoded: Array(der)),
            signers.contains(certificate)
        else {
            throw ServiceError.unauthorized("PolicySignerUnknown", "the policy is not signed by a configured signer")
        }
        guard certificate.notValidBefore <= time, time <= certificate.notValidAfter else {
            throw ServiceError.unauthorized("PolicySignerUnknown", "the signer's certificate is not valid now")
        }
        // Microsoft's clients name RS256 "RSA256".
        let algorithm = document.algorithm == "RSA256" ? "RS256" : document.algorithm
        guard let signature = Base64URL.decode(document.signature),
            Self.verify(signature, over: document.signedBytes, algorithm: algorithm, key: certificate.publicKey)
        else {
            throw ServiceError.unauthorized("PolicySignatureInvalid", "the policy signature does not verify")
        }
        return certificate
    }

    /// Record the request as used: its version as the newest for `scope`, or (MAA's form) what it signed; refuse
    /// it as a replay otherwise.
    func commit(_ request: AuthorizedRequest, scope: String, at time: Date) async throws {
        if let digest = request.singleUseDigest {
            guard try await store.markPolicyRequestUsed(digest: digest, at: time) else {
                throw ServiceError(
                    status: 403,
                    code: "PolicyRequestReplayed",
                    message: "this signed request was accepted before; a request without "
                        + "\(Self.policyVersionClaim) is good once (sign a new one, or use enclave policy)"
                )
            }
            return
        }
        guard let version = request.version else { return }
        guard try await store.advancePolicyVersion(type: scope, to: version) else {
            throw ServiceError(
                status: 403,
                code: "PolicyVersionNotNewer",
                message: "\(Self.policyVersionClaim) \(version) is not greater than the last one accepted for "
                    + "\(scope): the request is a replay or out of order"
            )
        }
    }

    /// Record a signed reset in MAA's form (an empty payload, as Microsoft's clients sign it) for `type`; whether to
    /// apply it (false: a repeat while the default is in force, answered as a reset that changed nothing).
    ///
    /// Such a reset names neither the type, nor the service, nor anything fresh: one signer's resets are the same
    /// signed bytes (`digest`) every time, for every type. So:
    /// - the first time the service sees them, they reset `type` and are recorded for `type` (and as seen at all);
    /// - again for `type` while `type` has the default policy: a no-op success. Nothing changes, so a replay gains
    ///   nothing, and an operator repeating an idempotent reset is not refused;
    /// - again for `type` after a policy was set since: refused (`PolicyRequestReplayed`). This is exactly what a
    ///   captured copy would do (undo the newer policy) and the bytes cannot tell the owner from a replayer; the
    ///   message says how to reset again: a reset naming this service, the type, the operation and a new version;
    /// - for another type: refused (`PolicyRequestReplayed`): a reset recorded for one type never acts on another.
    /// What remains (the form has nothing else to bind): a reset seen by someone before the service saw it acts on
    /// whichever type it is first presented for; ``Configuration/requireVersionedPolicyRequests`` closes that.
    func commitUnversionedReset(digest: String, type: AttestationType, at time: Date) async throws -> Bool {
        if try await store.markPolicyRequestUsed(digest: digest, at: time) {
            _ = try await store.markPolicyRequestUsed(digest: Self.resetRecord(digest, type: type), at: time)
            return true
        }
        let howToReset =
            "To reset \(type.rawValue) now, sign a reset naming \(Self.policyAudienceClaim) (this service, \(issuer)), "
            + "\(Self.policyTypeClaim) \(type.rawValue), \(Self.policyOperationClaim) reset and an "
            + "\(Self.policyVersionClaim) greater than any accepted for \(type.rawValue) (with a P-256 signer, "
            + "`enclave policy reset --service URL --type \(type.rawValue) --signer-key KEY --signer-cert CERT` "
            + "makes one)."
        guard try await store.policyRequestUsed(digest: Self.resetRecord(digest, type: type)) else {
            var accepted: [String] = []
            for other in AttestationType.allCases {
                if try await store.policyRequestUsed(digest: Self.resetRecord(digest, type: other)) {
                    accepted.append(other.rawValue)
                }
            }
            throw ServiceError(
                status: 403,
                code: "PolicyRequestReplayed",
                message: "this reset in MAA's form (an empty payload, no \(Self.policyVersionClaim)) was accepted for "
                    + (accepted.isEmpty ? "another attestation type" : accepted.joined(separator: ", "))
                    + ": it names no type, so it resets only the type it was first accepted for. " + howToReset
            )
        }
        guard try await store.policy(type: type.rawValue) == nil else {
            throw ServiceError(
                status: 403,
                code: "PolicyRequestReplayed",
                message: "this reset in MAA's form (an empty payload, no \(Self.policyVersionClaim)) was accepted for "
                    + "\(type.rawValue) before and a policy has been set since: its signed bytes are the same every "
                    + "time, so it cannot be told from a captured copy undoing that policy. " + howToReset
            )
        }
        return false
    }

    /// The record of an MAA-form reset (`digest`) accepted for `type`.
    static func resetRecord(_ digest: String, type: AttestationType) -> String {
        Hex.encode(Array(SHA256.hash(data: Array("maa-form reset for \(type.rawValue): \(digest)".utf8))))
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
        try checkAudience(payload)
        return try Self.checkTypeOperationVersion(
            named: named,
            action: action,
            number: number,
            literal: document.rawMembers[Self.policyVersionClaim],
            operation: operation,
            type: type
        )
    }

    /// A signed certificate change in EnclaveKit's form: this service, the operation (`add` or `remove`), no
    /// attestation type, and a version greater than the last certificate change's.
    func checkCertificateClaims(_ document: PolicyDocument, operation: PolicyOperation) throws -> Int64? {
        let payload = document.payload
        guard payload[Self.policyTypeClaim] == nil, payload[Self.policyOperationClaim] != nil,
            payload[Self.policyVersionClaim] != nil, payload[Self.policyAudienceClaim] != nil
        else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "a signed certificate change names \(Self.policyAudienceClaim), \(Self.policyOperationClaim) "
                    + "(add or remove) and \(Self.policyVersionClaim), and no attestation type"
            )
        }
        try checkAudience(payload)
        // Any type serves to check the operation and the version: the payload names none.
        return try Self.checkTypeOperationVersion(
            named: nil,
            action: payload[Self.policyOperationClaim],
            number: payload[Self.policyVersionClaim],
            literal: document.rawMembers[Self.policyVersionClaim],
            operation: operation,
            type: .sgxEnclave
        )
    }

    private func checkAudience(_ payload: [String: Any]) throws {
        guard let audience = payload[Self.policyAudienceClaim] else { return }
        guard let text = audience as? String, Self.sameService(text, issuer) else {
            throw ServiceError(
                status: 403,
                code: "PolicyAudienceMismatch",
                message: "the request is for the service \(ServiceError.quote(String("\(audience)".prefix(256)))), "
                    + "not \(issuer)"
            )
        }
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
        /// The payload's bytes (empty in a reset as Microsoft's clients send it).
        var payloadBytes: [UInt8] = []
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
        // An empty payload is MAA's reset (Microsoft's clients sign "" for it): no members.
        let json = payloadBytes.isEmpty ? Array("{}".utf8) : payloadBytes
        _ = try StrictJSON(headerBytes, what: "the policy request's header")
        let members = try StrictJSON(json, what: "the policy request's payload").topLevelValues
        guard let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
            let payload = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any]
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
            rawMembers: members,
            payloadBytes: payloadBytes
        )
    }

    /// A signed token about the policy of `type`: `x-ms-policy` (the JWS it was set with, or an unsigned JWS of
    /// the default), its hash and, when the policy was signed, `x-ms-policy-signer`.
    public func policyToken(type: AttestationType, at time: Date = Date()) async throws -> String {
        let current = try await currentPolicy(type: type)
        let jws = try await currentPolicyJWS(type: type)
        var claims: [String: TokenValue] = ["x-ms-policy": .string(jws), "x-ms-policy-hash": .string(current.hash)]
        if let document = try? Self.parsePolicyJWS(jws), document.algorithm.lowercased() != "none",
            let chain = (document.header["x5c"] as? [String])
                ?? ((document.header["jwk"] as? [String: Any])?["x5c"]
                    as? [String]),
            let first = chain.first, let der = Data(base64Encoded: first),
            let certificate = try? Certificate(derEncoded: Array(der))
        {
            claims["x-ms-policy-signer"] = try Self.signerJWK(certificate)
        }
        return try await policyToken(claims, at: time)
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

    // MARK: Policy management certificates

    /// A signed token listing the policy management certificates (`x-ms-policy-certificates`: a JWKS whose keys
    /// carry each certificate in `x5c`), as MAA's `GET /certificates` answers.
    public func policyCertificatesToken(at time: Date = Date()) async throws -> String {
        let keys = try await policySigners(at: time).map(Self.signerJWK)
        return try await policyToken(["x-ms-policy-certificates": .object(["keys": .array(keys)])], at: time)
    }

    /// Add the certificate in `jws`'s payload (`policyCertificate`: a JWK whose `x5c[0]` is it) to the policy
    /// management certificates. The request is authorized as a policy change is (signed by a current signer; once
    /// only in MAA's form, or naming this service, the operation `add` and a new version).
    /// - Returns: a token with `x-ms-certificate-thumbprint` (hex SHA-1 of the certificate, as MAA) and
    ///   `x-ms-policycertificates-result: IsPresent`.
    public func addPolicyCertificate(
        jws: String,
        credential: String? = nil,
        at time: Date = Date()
    ) async throws
        -> String
    {
        try await changePolicyCertificate(.add, jws: jws, credential: credential, at: time)
    }

    /// Remove the certificate in `jws`'s payload from the policy management certificates, authorized as
    /// ``addPolicyCertificate(jws:credential:at:)``. The last certificate is never removed
    /// (`LastPolicySignerRemoval`): that would leave policies changeable by nobody, or open them.
    /// - Returns: a token with `x-ms-certificate-thumbprint` and `x-ms-policycertificates-result: IsAbsent`.
    public func removePolicyCertificate(
        jws: String,
        credential: String? = nil,
        at time: Date = Date()
    ) async throws
        -> String
    {
        try await changePolicyCertificate(.remove, jws: jws, credential: credential, at: time)
    }

    private func changePolicyCertificate(
        _ operation: PolicyOperation,
        jws: String,
        credential: String?,
        at time: Date
    ) async throws -> String {
        let request = try await authorize(operation, type: nil, jws: jws, credential: credential, at: time)
        guard let key = request.payload["policyCertificate"] as? [String: Any], let chain = key["x5c"] as? [String],
            let first = chain.first, first.utf8.count <= 65536, let bytes = Data(base64Encoded: first),
            let certificate = try? Certificate(derEncoded: Array(bytes))
        else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "the payload is not {\"policyCertificate\": a JWK whose x5c[0] is a base64 DER certificate}"
            )
        }
        let der = try Self.der(certificate)
        try await commit(request, scope: Self.certificatesScope, at: time)
        let result: String
        switch operation {
        case .add:
            _ = try await store.addPolicySigner(der, at: time)
            result = "IsPresent"
        default:
            switch try await store.removePolicySigner(der, at: time) {
            case .last:
                throw ServiceError(
                    status: 409,
                    code: "LastPolicySignerRemoval",
                    message: "the certificate is the last policy management certificate: add another before "
                        + "removing it (without any, nobody could change policies)"
                )
            case .removed, .absent:
                result = "IsAbsent"
            }
        }
        let thumbprint = Hex.encode(Array(Insecure.SHA1.hash(data: der))).uppercased()
        logger.notice(
            "policy management certificate \(operation.rawValue)",
            metadata: ["thumbprint": "\(thumbprint)", "by": "\(request.signer)"]
        )
        return try await policyToken(
            [
                "x-ms-certificate-thumbprint": .string(thumbprint),
                "x-ms-policycertificates-result": .string(result),
            ],
            at: time
        )
    }

    /// A certificate as MAA lists a policy signer: a JWK (`kty`, `alg`, `use`) carrying it in `x5c`.
    static func signerJWK(_ certificate: Certificate) throws -> TokenValue {
        let rsa = _RSA.Signing.PublicKey(certificate.publicKey) != nil
        let key = JSONWebKey(
            kty: rsa ? "RSA" : "EC",
            alg: rsa ? "RS256" : nil,
            use: "sig",
            x5c: [Data(try der(certificate)).base64EncodedString()]
        )
        return try JSONDecoder().decode(TokenValue.self, from: JSONEncoder().encode(key))
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    // MARK: Making requests

    /// An unsigned policy JWS (`alg: none`) for `text`, as MAA's tools make them.
    public static func unsignedPolicyJWS(_ text: String) -> String {
        let header = Base64URL.encode(Array(TokenValue.object(["alg": .string("none")]).description.utf8))
        let payload = Base64URL.encode(
            Array(
                TokenValue.object(["AttestationPolicy": .string(Base64URL.encode(Array(text.utf8)))]).description.utf8
            )
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
        let x5c = Data(try der(certificate)).base64EncodedString()
        let header = Base64URL.encode(
            Array(TokenValue.object(["alg": .string("ES256"), "x5c": .array([.string(x5c)])]).description.utf8)
        )
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
