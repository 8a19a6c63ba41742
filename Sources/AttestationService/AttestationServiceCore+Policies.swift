internal import AttestationClient
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

    /// Set the policy of `type` from a JWS as MAA accepts it: payload `{"AttestationPolicy": base64url(text)}`,
    /// header `alg: none` (only while no policy signer is configured) or signed by a configured signer whose
    /// certificate is the header's `x5c[0]`. The text must parse.
    /// - Returns: a token recording the change (`x-ms-policy-result`, hash, signer).
    public func setPolicy(type: AttestationType, jws: String, at time: Date = Date()) async throws -> String {
        let parts = jws.trimmingCharacters(in: .whitespacesAndNewlines).split(
            separator: ".",
            omittingEmptySubsequences: false
        )
        guard parts.count == 3, let headerBytes = Base64URL.decode(String(parts[0])),
            let payloadBytes = Base64URL.decode(String(parts[1])),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
            let payload = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any],
            let encoded = payload["AttestationPolicy"] as? String,
            let textBytes = Base64URL.decode(encoded), let text = String(validating: textBytes, as: UTF8.self)
        else {
            throw ServiceError.badRequest(
                "InvalidPolicyDocument",
                "the body is not a JWS whose payload is {\"AttestationPolicy\": base64url(policy)}"
            )
        }
        let algorithm = header["alg"] as? String ?? ""
        var signerName = "(unsigned)"
        if algorithm.lowercased() == "none" {
            guard configuration.policySigners.isEmpty else {
                throw ServiceError.unauthorized(
                    "PolicySignatureRequired",
                    "this service accepts only policies signed by a configured policy signer"
                )
            }
            guard parts[2].isEmpty else {
                throw ServiceError.badRequest("InvalidPolicyDocument", "an unsigned policy has an empty signature")
            }
        } else {
            guard !configuration.policySigners.isEmpty else {
                throw ServiceError.unauthorized("PolicySignerUnknown", "no policy signer is configured")
            }
            guard let chain = header["x5c"] as? [String], let first = chain.first,
                let der = Data(base64Encoded: first), let certificate = try? Certificate(derEncoded: Array(der)),
                configuration.policySigners.contains(certificate)
            else {
                throw ServiceError.unauthorized(
                    "PolicySignerUnknown",
                    "the policy is not signed by a configured signer"
                )
            }
            guard let signature = Base64URL.decode(String(parts[2])),
                Self.verify(
                    signature,
                    over: Array((parts[0] + "." + parts[1]).utf8),
                    algorithm: algorithm,
                    key: certificate.publicKey
                )
            else {
                throw ServiceError.unauthorized("PolicySignatureInvalid", "the policy signature does not verify")
            }
            signerName = certificate.subject.description
        }
        do {
            _ = try AttestationPolicy(text: text)
        } catch {
            throw ServiceError.badRequest("InvalidPolicy", error.description)
        }
        let hash = Self.hash(text)
        try await store.setPolicy(StoredPolicy(text: text, jws: jws, hash: hash, updated: time), type: type.rawValue)
        logger.notice("policy updated", metadata: ["type": "\(type.rawValue)", "hash": "\(hash)"])
        return try await policyToken(
            [
                "x-ms-policy-result": .string("Updated"), "x-ms-policy-hash": .string(hash),
                "x-ms-policy-signer": .string(signerName),
            ],
            at: time
        )
    }

    /// Reset the policy of `type` to the default.
    public func resetPolicy(type: AttestationType, at time: Date = Date()) async throws -> String {
        try await store.setPolicy(nil, type: type.rawValue)
        logger.notice("policy reset", metadata: ["type": "\(type.rawValue)"])
        return try await policyToken(["x-ms-policy-result": .string("Removed")], at: time)
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
        token["iss"] = .string(configuration.issuer)
        token["iat"] = .integer(now)
        token["nbf"] = .integer(now)
        token["exp"] = .integer(now + Int(configuration.tokenLifetime))
        return try await signer.sign(token, jku: configuration.issuer + "/certs")
    }

    /// An unsigned policy JWS (`alg: none`) for `text`, as MAA's tools make them.
    public static func unsignedPolicyJWS(_ text: String) -> String {
        let header = Base64URL.encode(Array("{\"alg\":\"none\"}".utf8))
        let payload = Base64URL.encode(
            Array("{\"AttestationPolicy\":\"\(Base64URL.encode(Array(text.utf8)))\"}".utf8)
        )
        return header + "." + payload + "."
    }

    /// A policy JWS signed with `key` (ES256), carrying `certificate` in `x5c`.
    public static func signedPolicyJWS(
        _ text: String,
        key: P256.Signing.PrivateKey,
        certificate: Certificate
    ) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let x5c = Data(serializer.serializedBytes).base64EncodedString()
        let header = Base64URL.encode(Array("{\"alg\":\"ES256\",\"x5c\":[\"\(x5c)\"]}".utf8))
        let payload = Base64URL.encode(
            Array("{\"AttestationPolicy\":\"\(Base64URL.encode(Array(text.utf8)))\"}".utf8)
        )
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
