public import AttestationAPI
internal import AttestationService
internal import EnclaveCore
internal import Foundation
internal import Hummingbird
internal import KeyBroker
internal import KeyBrokerInterface

extension KeyBrokerCore {
    /// The largest attestation token accepted in a release (64 KiB).
    public static let maximumTokenSize = 64 << 10

    /// `POST /keys/{name}/{version}/release`: the key, wrapped to the token's key, when the broker enclave finds the
    /// token valid and the policy satisfied. No administrator credential: the token is the credential. A grant, and
    /// a refusal of a token the enclave verified, is audited with the token's issuer, `jti` and measurement claims.
    /// An anonymous refusal — before the enclave (bad or unknown name or version, disabled key, oversize target) or
    /// of a token the enclave did not verify — is only counted (`KeyBrokerRefusalCount`: the key's name when it
    /// exists, the code, the minute), in a bounded table: nobody authenticated can grow the append-only audit log,
    /// and nothing of an unverified token is kept.
    public func release(
        name: String,
        version: String,
        parameters: KeyReleaseParameters
    ) async throws
        -> KeyReleaseResult
    {
        let stored: StoredKeyVersion
        var known: String?
        do {
            guard parameters.target.utf8.count <= Self.maximumTokenSize else {
                throw ServiceError.badRequest("BadParameter", "target is larger than \(Self.maximumTokenSize) bytes")
            }
            guard (parameters.nonce?.utf8.count ?? 0) <= 1024 else {
                throw ServiceError.badRequest("BadParameter", "nonce is longer than 1024 bytes")
            }
            stored = try await self.stored(name: name, version: version)
            known = stored.name
            let now = Int64(Date().timeIntervalSince1970)
            guard stored.attributes.enabled != false else {
                throw ServiceError(status: .forbidden, code: "KeyDisabled", message: "key \(name) is disabled")
            }
            if let nbf = stored.attributes.nbf, now < nbf {
                throw ServiceError(status: .forbidden, code: "KeyNotYetValid", message: "key \(name) is not valid yet")
            }
            if let exp = stored.attributes.exp, now >= exp {
                throw ServiceError(status: .forbidden, code: "KeyExpired", message: "key \(name) has expired")
            }
        } catch let error as ServiceError {
            try await countRefusal(key: known ?? KeyBrokerRefusalCount.unknownKey, code: error.code)
            throw error
        }
        let request = BrokerReleaseRequest(
            key: stored.key,
            target: parameters.target,
            nonce: parameters.nonce,
            enc: parameters.enc
        )
        let response = try await engineCall { try await engine.release(request) }
        if let value = response.value, response.refusal == nil {
            let claims = Self.auditText(response.audit.claims)
            try await audit(
                "release",
                key: name,
                version: stored.version,
                result: "granted",
                reason: "policy satisfied",
                issuer: response.audit.issuer,
                jti: response.audit.tokenID,
                claims: claims
            )
            return KeyReleaseResult(value: value)
        }
        let refusal =
            response.refusal ?? BrokerRefusal(code: "ReleaseRefused", message: "the broker refused the release")
        if response.audit.verified {
            try await audit(
                "release",
                key: name,
                version: stored.version,
                result: "refused",
                reason: "\(refusal.code): \(refusal.message)",
                issuer: response.audit.issuer,
                jti: response.audit.tokenID,
                claims: Self.auditText(response.audit.claims)
            )
        } else {
            try await countRefusal(key: stored.name, code: refusal.code)
        }
        let status: HTTPResponse.Status =
            refusal.code == BrokerRefusal.Code.malformedToken || refusal.code == BrokerRefusal.Code.unsupportedWrap
            ? .badRequest : .forbidden
        throw ServiceError(status: status, code: refusal.code, message: refusal.message)
    }

    /// A release's measurement claims as the audit record keeps them (nil when there are none): the JSON text
    /// `WireJSON.string` makes of them (members sorted, `JSONEncoder`'s escapes), written by ``PlainJSON`` (or
    /// `TokenJSON` when a claim needs escaping) without an encoder per release.
    static func auditText(_ claims: [String: String]) -> String? {
        claims.isEmpty ? nil : PlainJSON.object(claims) ?? TokenJSON.text(.object(claims.mapValues { .string($0) }))
    }

    /// `GET /attestation`: the broker enclave's evidence, signing certificate and import key.
    public func attestation() async throws -> KeyBrokerAttestation {
        let identity = try await engineCall { try await engine.identity() }
        return KeyBrokerAttestation(
            evidence: Base64URL.encode(identity.evidence),
            runtimeData: Base64URL.encode(identity.runtimeData),
            certificate: Data(identity.certificateDER).base64EncodedString(),
            importKey: identity.importKey
        )
    }

    /// `GET /importkey`: the key to wrap imported keys to.
    public func importKey() async throws -> KeyBrokerWebKey {
        try await engineCall { try await engine.identity() }.importKey
    }

    /// `POST /replicas/join` (administrators): the keyring wrapped to a newcomer's enclave, if this instance's
    /// enclave accepts its token.
    public func grantJoin(_ request: ReplicaJoinRequest, credential: String?) async throws -> ReplicaJoinGrant {
        try await audited("join", key: "") {
            try authorize(credential)
            guard request.token.utf8.count <= Self.maximumTokenSize, request.key.utf8.count <= 4096 else {
                throw ServiceError.badRequest("BadParameter", "the join token or key is too large")
            }
            let grant = try await engineCall {
                try await engine.grantJoin(BrokerJoinGrantRequest(token: request.token, key: request.key))
            }
            guard let evidence = grant.evidence else {
                throw ServiceError.internal("the broker enclave made a grant without its evidence")
            }
            let answer = ReplicaJoinGrant(
                grant: grant.grant,
                evidence: Base64URL.encode(try WireJSON.encode(evidence)),
                runtimeData: Base64URL.encode(grant.runtimeData)
            )
            return (answer, nil, "keyring wrapped to an attested newcomer")
        }
    }
}
