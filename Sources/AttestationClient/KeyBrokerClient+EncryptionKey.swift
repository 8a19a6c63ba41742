public import AttestationAPI
internal import Crypto
internal import EnclaveCore

extension KeyBrokerClient {
    /// Refusal codes of ``encryptionKey(name:version:expecting:)`` (``AttestationClient/Failure/code``, status 0:
    /// decided on this side, before anything is encrypted).
    public enum EncryptionKeyRefusal {
        /// The name's versions differ in origin (an owner's and the administrator's, or one recorded and one from
        /// before the broker recorded origins): the newest may not be the key the data was meant for.
        public static let originChanged = "KeyOriginChanged"
        /// The key's origin is not the one expected.
        public static let originNotExpected = "KeyOriginNotExpected"
        /// The key's public part does not have the thumbprint expected (or it has none: an AES key).
        public static let thumbprintMismatch = "KeyThumbprintMismatch"
    }

    /// The key to encrypt data keys to: `GET /keys/{name}[/{version}]`, checked against `expecting`. Without a
    /// `version` (the newest) the name's versions (`GET /keys/{name}/versions`) must all have the newest's origin: a
    /// new version of another origin under the name (the administrator's after an owner's import) is refused rather
    /// than silently taken.
    /// - Throws: ``AttestationClient/Failure`` with an ``EncryptionKeyRefusal`` code, or the broker's errors.
    public func encryptionKey(
        name: String,
        version: String? = nil,
        expecting: KeyBrokerKeyExpectation = KeyBrokerKeyExpectation()
    ) async throws -> KeyBundle {
        // The versions first: a version added after the list is the newest, and its origin is checked against them.
        let versions = version == nil ? try await self.versions(name: name).value : nil
        let bundle = try await key(name: name, version: version)
        try Self.check(encryptionKey: bundle, versions: versions, expecting: expecting)
        return bundle
    }

    /// ``encryptionKey(name:version:expecting:)``'s checks: `bundle` has `expecting`'s origin and thumbprint, and
    /// every one of `versions` (nil: a version was chosen) has `bundle`'s origin.
    /// - Throws: ``AttestationClient/Failure`` with an ``EncryptionKeyRefusal`` code.
    public static func check(
        encryptionKey bundle: KeyBundle,
        versions: [KeyItem]?,
        expecting: KeyBrokerKeyExpectation
    ) throws {
        let origin = bundle.attributes.origin
        func named(_ origin: KeyOrigin?) -> String { origin?.rawValue ?? "unrecorded" }
        if let versions, let other = versions.first(where: { $0.attributes.origin != origin }) {
            throw refusal(
                EncryptionKeyRefusal.originChanged,
                "the newest version of the key (\(bundle.key.kid ?? "?")) is the \(named(origin))'s, but \(other.kid) "
                    + "is the \(named(other.attributes.origin))'s: the name changed hands; choose a version (--version) "
                    + "if you mean it"
            )
        }
        if let expected = expecting.origin, origin != expected {
            throw refusal(
                EncryptionKeyRefusal.originNotExpected,
                "the key \(bundle.key.kid ?? "?") is the \(named(origin))'s, not the \(expected.rawValue)'s"
            )
        }
        if let expected = expecting.thumbprint {
            let actual = jwkThumbprint(bundle.key)
            guard actual == expected else {
                throw refusal(
                    EncryptionKeyRefusal.thumbprintMismatch,
                    "the key \(bundle.key.kid ?? "?") has the thumbprint \(actual ?? "(none: no public part)"), not "
                        + expected
                )
            }
        }
    }

    /// The RFC 7638 thumbprint of a key's public part: base64url SHA-256 of its required members (`e`, `kty`, `n`
    /// for RSA; `crv`, `kty`, `x`, `y` for EC) in that order, `kty` without Key Vault's `-HSM`. `nil` for an AES
    /// key or a JWK without them.
    public static func jwkThumbprint(_ jwk: KeyBrokerWebKey) -> String? {
        let members: [(String, String?)]
        switch jwk.kty {
        case "RSA", "RSA-HSM": members = [("e", jwk.e), ("kty", "RSA"), ("n", jwk.n)]
        case "EC", "EC-HSM": members = [("crv", jwk.crv), ("kty", "EC"), ("x", jwk.x), ("y", jwk.y)]
        default: return nil
        }
        var parts: [String] = []
        for (name, value) in members {
            guard let value else { return nil }
            parts.append(TokenValue.string(name).jsonText + ":" + TokenValue.string(value).jsonText)
        }
        let canonical = "{" + parts.joined(separator: ",") + "}"
        return Base64URL.encode(Array(SHA256.hash(data: Array(canonical.utf8))))
    }
}

private func refusal(_ code: String, _ message: String) -> AttestationClient.Failure {
    AttestationClient.Failure(status: 0, code: code, message: message)
}
